"""What the gateway answers when an upstream cannot: a stale redirect where
that is safe, otherwise a fast problem document with ``Retry-After``.

    breaker open / bulkhead full / unreachable -> 503    too slow -> 504

Stale redirects are only for ``GET /{code}`` (see gateway/stale.py); every
other request gets the problem document, so a client can tell "try again in
a moment" from "you sent something wrong".
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

from starlette.types import Scope, Send

from gateway.stale import STALE_TTL_HEADER, StaleClicks, StaleRedirect, StaleRedirects
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


class Outage(NamedTuple):
    """A redirect or request the gateway may answer itself (fresh, stale, or an
    error when the upstream cannot), with what is needed to answer it."""

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

    def learn(
        self, code: str, status: int, headers: Iterable[tuple[bytes, bytes]], generation: int
    ) -> None:
        """Keep (or drop) what the link service just answered for ``code``;
        ``generation``: the cache's when the request was sent."""
        if not 300 <= status < 400:
            if status in (404, 410):
                self.stale.forget(code)
            return
        location = ttl = cache_control = None
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"location":
                location = value
            elif lowered == STALE_TTL_HEADER:
                ttl = value
            elif lowered == b"cache-control":
                cache_control = value
        if location is not None:
            self.stale.remember(code, status, location, ttl, cache_control, generation)

    async def serve_fresh(self, request: Outage) -> int | None:
        """Answer a redirect from memory while its entry is fresh; its status, or None.

        The answer is the link service's own (status, ``Location``,
        ``Cache-Control``) with ``Age`` (RFC 9111 5.1), so a browser's cache
        counts the time it spent here against ``max-age``.
        """
        if request.code is None:
            return None
        entry = self.stale.fresh(request.code)
        if entry is None:
            return None
        headers = [(b"age", str(self.stale.age(entry)).encode())]
        if entry.cache_control is not None:
            headers.append((b"cache-control", entry.cache_control))
        await self._answer(request, request.code, entry, b"hit", headers)
        return entry.status

    async def serve_shared(
        self, request: Outage, status: int, headers: list[tuple[bytes, bytes]], generation: int
    ) -> int:
        """Answer a redirect from the link service's read model (gateway/readmodel.py)
        and learn it, as if the link service had sent ``headers``."""
        assert request.code is not None
        self.learn(request.code, status, headers, generation)
        self._record(request, request.code)
        sent = [(k, v) for k, v in headers if k != STALE_TTL_HEADER]
        await self._send(request, status, b"shared", sent)
        return status

    async def replay(self, outage: Outage) -> int | None:
        """Answer with a stale redirect if one is safe; its status, or None."""
        if outage.code is None:
            return None
        entry = self.stale.get(outage.code)
        if entry is None:
            return None
        headers = [(b"cache-control", b"private, no-store")]
        await self._answer(outage, outage.code, entry, b"stale", headers)
        return entry.status

    async def _answer(
        self,
        request: Outage,
        code: str,
        entry: StaleRedirect,
        how: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        """Send ``entry`` as the redirect and publish its click, as the link service would."""
        self._record(request, code)
        await self._send(request, entry.status, how, [*headers, (b"location", entry.location)])

    def _record(self, request: Outage, code: str) -> None:
        self.clicks.record(
            code, request.scope["headers"], request.identity.client_ip, request.click_id
        )

    @staticmethod
    async def _send(
        request: Outage, status: int, how: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        headers += [
            (b"x-gateway-cache", how),
            (b"content-length", b"0"),
            *request.extra_headers,
        ]
        await request.send({"type": "http.response.start", "status": status, "headers": headers})
        await request.send({"type": "http.response.body", "body": b""})

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
