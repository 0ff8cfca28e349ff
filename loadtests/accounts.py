"""Setting up load through the public API: an account with an API key, its
links; and the gateway's signature, for a request straight to a service.

Both ``make bench`` and the Locust test start from nothing but a running
gateway, so they create what they need the way a client would. The gateway
limits sign-ups and logins per client address (10/minute by default): a
429 here is waited out (``Retry-After``), not treated as a failure.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

import httpx

from infra.devstack.stack import INTERNAL_AUTH_KEY
from services.chassis.identity import GatewaySigner, Identity

__all__ = ["Account", "create_link", "list_codes", "open_account", "visitor_headers"]

log = logging.getLogger(__name__)
_MAX_WAIT_SECONDS: Final = 90.0


@dataclass(frozen=True)
class Account:
    """A registered user and the API key that acts for it (``X-API-Key``)."""

    email: str
    user_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key}


def open_account(http: httpx.Client, label: str) -> Account:
    """Register a fresh user named after ``label``, log in, and create an API key."""
    credentials = {
        "email": f"{label}-{uuid.uuid4().hex[:12]}@example.com",
        "password": secrets.token_urlsafe(24),
    }
    user = _call(http, "POST", "/api/v1/auth/register", json=credentials)
    grant = _call(http, "POST", "/api/v1/auth/login", json=credentials)
    key = _call(
        http,
        "POST",
        "/api/v1/api-keys",
        json={"name": label},
        headers={"authorization": f"Bearer {grant['access_token']}"},
    )
    return Account(credentials["email"], str(user["id"]), str(key["key"]))


def create_link(http: httpx.Client, account: Account, url: str) -> str:
    """Shorten ``url`` as ``account``; the new code."""
    return str(
        _call(http, "POST", "/api/v1/links", json={"url": url}, headers=account.headers)["code"]
    )


def list_codes(http: httpx.Client, account: Account) -> list[str]:
    """Every code ``account`` owns, newest first."""
    codes: list[str] = []
    params: dict[str, str | int] = {"limit": 100}
    while True:
        page = _call(http, "GET", "/api/v1/links", params=params, headers=account.headers)
        codes += [item["code"] for item in page["items"]]
        if page["next_cursor"] is None:
            return codes
        params["cursor"] = page["next_cursor"]


def _call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """The JSON answer; a 429 is waited out, anything else unexpected raises."""
    deadline = time.monotonic() + _MAX_WAIT_SECONDS
    while True:
        response = http.request(method, path, **kwargs)
        if response.status_code != 429 or time.monotonic() > deadline:
            break
        wait = float(response.headers.get("retry-after", "1"))
        log.warning("%s %s: rate limited (429), retrying in %.0f s", method, path, wait)
        time.sleep(min(wait, _MAX_WAIT_SECONDS))
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
    return response.json()


def visitor_headers(path: str) -> dict[str, str]:
    """What the gateway adds to ``GET path`` for an anonymous visitor from 127.0.0.1."""
    signer = GatewaySigner(INTERNAL_AUTH_KEY.encode())
    pairs = signer.headers("GET", path.encode(), Identity(None, "anonymous", "127.0.0.1"))
    # The verifier reads a missing header as empty, and wrk cannot send an empty one.
    return {name.decode(): value.decode() for name, value in pairs if value}
