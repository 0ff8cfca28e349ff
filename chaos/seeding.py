"""Fresh links for each experiment, of both kinds (chaos/traffic.py), and a fresh login."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import httpx

from chaos.probes import Context, counted_clicks, wait_for
from chaos.traffic import Links
from loadtests.accounts import Account, create_link
from services.link.schemas import MAX_VISITS_LIMIT

__all__ = ["LIMITED_LINKS", "seed"]

# Visit-limited links per experiment; they take one request in LIMITED_EVERY.
LIMITED_LINKS = 3


def seed(context: Context, count: int) -> tuple[Context, Links]:
    """``count`` published links and ``LIMITED_LINKS`` visit-limited ones, known
    to analytics before the experiment starts, and a fresh login (the token a
    fault's probe uses must not expire)."""
    with httpx.Client(base_url=context.gateway, timeout=10) as http:
        published = [
            create_link(http, context.account, f"https://example.com/chaos/{n}")
            for n in range(count)
        ]
        limited = [
            _create_limited(http, context.account, f"https://example.com/chaos/limited/{n}")
            for n in range(LIMITED_LINKS)
        ]
        token = _login(http, context)
    context = replace(context, access_token=token)
    for code in published + limited:  # stats answer once analytics has seen the link's event
        if wait_for(_known(context, code), 30) is None:
            raise RuntimeError(f"analytics never learned link {code}")
    return context, Links(published, limited)


def _create_limited(http: httpx.Client, account: Account, url: str) -> str:
    """A link whose every visit the link service counts: a limit never reached,
    and a temporary redirect (a limited link may not be permanent)."""
    body = {"url": url, "max_visits": MAX_VISITS_LIMIT, "redirect_type": 302}
    response = http.post("/api/v1/links", json=body, headers=account.headers)
    response.raise_for_status()
    return str(response.json()["code"])


def _login(http: httpx.Client, context: Context) -> str:
    """A fresh access token. Logins fail closed while the gateway cannot count
    them (its Redis breaker open after a Redis fault): wait that out."""
    credentials = {"email": context.email, "password": context.password}
    deadline = time.monotonic() + 60
    while True:
        response = http.post("/api/v1/auth/login", json=credentials)
        if response.status_code != 503 or time.monotonic() > deadline:
            response.raise_for_status()
            token: str = response.json()["access_token"]
            return token
        time.sleep(0.5)


def _known(context: Context, code: str) -> Callable[[], bool]:
    return lambda: counted_clicks(context, code) is not None
