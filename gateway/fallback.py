"""What the gateway answers when an upstream cannot: a stale redirect where
that is safe, otherwise a fast problem document with ``Retry-After``.

    breaker open / bulkhead full / unreachable -> 503    too slow -> 504

Stale redirects are only for ``GET /{code}`` (see gateway/stale.py); every
other request gets the problem document, so a client can tell "try again in
a moment" from "you sent something wrong".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx
from starlette.types import Scope, Send

from gateway.stale import STALE_TTL_HEADER, StaleClicks, StaleRedirects
from services.chassis.errors import send_problem
from services.chassis.identity import Identity

__all__ = ["Fallback", "Outage"]

_PROBLEMS = {
    "unavailable": ("upstream_unavailable", "Upstream unavailable", "is unavailable"),
    "breaker_open": (
        "upstream_circuit_open",
        "Upstream unavailable",
        "is failing; requests to it are held off for a moment",
    ),
    "bulkhead_full": (
        "upstream_saturated",
        "Upstream saturated",
        "has as many requests in flight as it may take",
    ),
}


@dataclass(frozen=True, slots=True)
class Outage:
    """A request the upstream could not answer, with what is needed to answer it."""

    upstream: str
    scope: Scope
    send: Send
    identity: Identity
    extra_headers: list[tuple[bytes, bytes]]
    code: str | None  # set for a redirect
    click_id: str | None = None  # the visit's click, if the redirect is replayed


class Fallback:
    def __init__(self, stale: StaleRedirects, clicks: StaleClicks) -> None:
        self.stale = stale
        self.clicks = clicks

    def learn(self, code: str, response: httpx.Response) -> None:
        """Keep (or drop) what the link service just answered for ``code``."""
        status = response.status_code
        if not 300 <= status < 400:
            if status in (404, 410):
                self.stale.forget(code)
            return
        location = ttl = None
        for name, value in response.headers.raw:
            lowered = name.lower()
            if lowered == b"location":
                location = value
            elif lowered == STALE_TTL_HEADER:
                ttl = value
        if location is not None:
            self.stale.remember(code, status, location, ttl)

    async def replay(self, outage: Outage) -> int | None:
        """Answer with a stale redirect if one is safe; its status, or None."""
        if outage.code is None:
            return None
        entry = self.stale.get(outage.code)
        if entry is None:
            return None
        self.clicks.record(
            outage.code, outage.scope["headers"], outage.identity.client_ip, outage.click_id
        )
        headers = [
            (b"location", entry.location),
            (b"cache-control", b"private, no-store"),
            (b"x-gateway-cache", b"stale"),
            (b"content-length", b"0"),
            *outage.extra_headers,
        ]
        await outage.send(
            {"type": "http.response.start", "status": entry.status, "headers": headers}
        )
        await outage.send({"type": "http.response.body", "body": b""})
        return entry.status

    async def unavailable(self, outage: Outage, reason: str, retry_after: float) -> int:
        """A stale redirect, or 503 with ``Retry-After``."""
        stale = await self.replay(outage)
        if stale is not None:
            return stale
        code, title, what = _PROBLEMS[reason]
        seconds = str(max(1, math.ceil(retry_after))).encode()
        await send_problem(
            outage.send,
            503,
            code,
            title,
            f"The {outage.upstream} service {what}. Try again shortly.",
            headers=[(b"retry-after", seconds), *outage.extra_headers],
        )
        return 503

    async def timed_out(self, outage: Outage) -> int:
        """A stale redirect, or 504."""
        stale = await self.replay(outage)
        if stale is not None:
            return stale
        detail = f"The {outage.upstream} service did not answer in time."
        await send_problem(
            outage.send,
            504,
            "upstream_timeout",
            "Upstream timeout",
            detail,
            headers=[(b"retry-after", b"1"), *outage.extra_headers],
        )
        return 504
