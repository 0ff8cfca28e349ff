"""What the drill does through the gateway, as a client would: links, clicks, stats."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field

import httpx

__all__ = ["Client", "Link"]

# A browser's agent, so clicks count as human (curl's and httpx's count as bots).
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"
PASSWORD = "correct horse battery staple"  # noqa: S105 -- a throwaway drill account


@dataclass
class Link:
    code: str
    url: str
    owned: bool
    clicks: int = 0  # redirects served for it, each one click event


@dataclass
class Client:
    """One user and the anonymous public, against the gateway at ``base_url``."""

    base_url: str
    email: str = field(default_factory=lambda: f"dr-{uuid.uuid4().hex[:8]}@example.com")
    token: str = ""

    def http(self) -> httpx.Client:
        headers = {"user-agent": BROWSER}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10, trust_env=False)

    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def register(self) -> None:
        with self.http() as http:
            body = {"email": self.email, "password": PASSWORD}
            http.post("/api/v1/auth/register", json=body).raise_for_status()
        if not self.login():
            raise RuntimeError(f"{self.email} could not log in right after registering")

    def login(self) -> bool:
        """Log in, keeping the fresh access token for later calls; did it work?"""
        with self.http() as http:
            body = {"email": self.email, "password": PASSWORD}
            response = http.post("/api/v1/auth/login", json=body)
        if response.status_code != 200:
            return False
        self.token = str(response.json()["access_token"])
        return True

    def create(self, n: int, *, owned: bool, tag: str) -> list[Link]:
        made = []
        with self.http() as http:
            for i in range(n):
                url = f"https://example.com/{tag}/{i}"
                headers = self.auth() if owned else {}
                response = http.post("/api/v1/links", json={"url": url}, headers=headers)
                response.raise_for_status()
                made.append(Link(response.json()["code"], url, owned))
        return made

    def click(self, links: list[Link], times: int) -> None:
        """Follow each link ``times`` times; each redirect served is one click."""
        with self.http() as http:
            for link in links:
                for _ in range(times):
                    self.resolve(http, link)

    def resolve(self, http: httpx.Client, link: Link) -> bool:
        """One visit: True (and one click more) if it redirects to the link's URL."""
        response = http.get(f"/{link.code}")
        if 300 <= response.status_code < 400:
            link.clicks += 1
            return bool(response.headers.get("location") == link.url)
        return False

    def counted(self, http: httpx.Client, link: Link) -> int:
        headers = self.auth() if link.owned else {}
        response = http.get(f"/api/v1/links/{link.code}/stats", headers=headers)
        if response.status_code != 200:
            return -1
        totals = response.json()["totals"]
        return int(totals["clicks"]) + int(totals["bot_clicks"])

    def wait_counted(self, links: list[Link], timeout: float) -> dict[str, int]:
        """Poll until every link's stats show its clicks; what they show at the end."""
        deadline = time.monotonic() + timeout
        with self.http() as http:
            while True:
                shown = {link.code: self.counted(http, link) for link in links}
                if all(shown[link.code] == link.clicks for link in links):
                    return shown
                if time.monotonic() > deadline:
                    return shown
                time.sleep(0.1)

    def wait_resolving(self, links: list[Link], timeout: float) -> bool:
        """Poll until each link redirects to its URL (one click per success); all did?"""
        deadline = time.monotonic() + timeout
        pending = list(links)
        with self.http() as http:
            while pending and time.monotonic() < deadline:
                # The gateway answers again shortly; the deadline bounds the wait.
                with contextlib.suppress(httpx.TransportError):
                    pending = [link for link in pending if not self.resolve(http, link)]
                if pending:
                    time.sleep(0.05)
        return not pending

    def can_create(self, timeout: float) -> bool:
        """Poll until a new link can be created (the link database takes writes)."""
        deadline = time.monotonic() + timeout
        with self.http() as http:
            while time.monotonic() < deadline:
                body = {"url": "https://example.com/after-restore"}
                if http.post("/api/v1/links", json=body).status_code == 201:
                    return True
                time.sleep(0.05)
        return False

    def lost(self, links: list[Link]) -> list[Link]:
        """The links whose code no longer resolves (404), one request each, no click."""
        with self.http() as http:
            return [link for link in links if http.get(f"/{link.code}").status_code == 404]
