"""What the suite reads from the running system: breaker states, click and
visit counts, and the checks an experiment makes while its fault is on."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from loadtests.accounts import Account

__all__ = [
    "Context",
    "Probe",
    "breaker_state",
    "counted_clicks",
    "counted_visits",
    "open_breakers",
    "wait_for",
]


@dataclass(frozen=True)
class Context:
    """What the checks need: the gateway, an account (API key) and a login."""

    gateway: str
    account: Account
    access_token: str
    email: str
    password: str


# A check made while the fault is on: None when it held, else what was seen.
Probe = Callable[[Context], str | None]


def breaker_states(gateway: str) -> dict[str, float]:
    """Every breaker of the gateway: 0 closed, 1 open, 2 half-open (from /metrics)."""
    try:
        text = httpx.get(f"{gateway}/metrics", timeout=2).text
    except httpx.HTTPError:
        return {}
    return {
        sample.labels["breaker"]: float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "circuit_breaker_state"
    }


def breaker_state(gateway: str, breaker: str) -> float | None:
    return breaker_states(gateway).get(breaker)


def open_breakers(gateway: str) -> list[str]:
    """The gateway's breakers not closed (an upstream's, or its Redis one)."""
    return sorted(name for name, state in breaker_states(gateway).items() if state != 0)


def counted_clicks(context: Context, code: str) -> int | None:
    """Clicks analytics has counted for ``code`` (humans and bots), if it answers."""
    try:
        response = httpx.get(
            f"{context.gateway}/api/v1/links/{code}/stats",
            headers=context.account.headers,
            timeout=5,
        )
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    totals = response.json()["totals"]
    return int(totals["clicks"]) + int(totals["bot_clicks"])


def counted_visits(context: Context, code: str) -> int | None:
    """Visits the link service counted for visit-limited ``code`` (in Postgres), if it answers."""
    try:
        response = httpx.get(
            f"{context.gateway}/api/v1/links/{code}", headers=context.account.headers, timeout=5
        )
    except httpx.HTTPError:
        return None
    visits = response.json().get("visits") if response.status_code == 200 else None
    return int(visits) if visits is not None else None


def wait_for(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> float | None:
    """Seconds until ``check`` held, or None if it did not within ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(interval)
    return None


def _status(response: httpx.Response) -> str:
    code = response.headers.get("content-type", "").startswith("application/problem+json")
    return f"{response.status_code} {response.json().get('code') if code else ''}".strip()


def stats_unavailable(context: Context) -> str | None:
    """Stats answer 503 with Retry-After while analytics is down."""
    response = httpx.get(
        f"{context.gateway}/api/v1/stats/top", headers=context.account.headers, timeout=5
    )
    if response.status_code == 503 and "retry-after" in response.headers:
        return None
    return f"stats answered {_status(response)}"


def logins_unavailable_tokens_valid(context: Context) -> str | None:
    """Logins answer 503, and a token issued before still works."""
    login = httpx.post(
        f"{context.gateway}/api/v1/auth/login",
        json={"email": context.email, "password": context.password},
        timeout=5,
    )
    mine = httpx.get(
        f"{context.gateway}/api/v1/links",
        headers={"authorization": f"Bearer {context.access_token}"},
        timeout=5,
    )
    if login.status_code == 503 and mine.status_code == 200:
        return None
    return f"login {_status(login)}, token use {_status(mine)}"


def writes_refused_quickly(context: Context) -> str | None:
    """Creating a link answers 503 within a second."""
    started = time.monotonic()
    response = httpx.post(
        f"{context.gateway}/api/v1/links",
        json={"url": "https://example.com/during-outage"},
        headers=context.account.headers,
        timeout=5,
    )
    took = time.monotonic() - started
    if response.status_code == 503 and took < 1.0:
        return None
    return f"create answered {_status(response)} in {took:.2f} s"


def all_hold(probes: Iterable[Probe], context: Context) -> list[str]:
    return [seen for probe in probes if (seen := probe(context)) is not None]
