"""Forwarding one request to an upstream service and streaming the answer back.

The client is httpx's API over aiohttp's transport (``httpx-aiohttp``):
httpx's own transport forwards at a tenth of the speed on this path (see
../shared/PERFORMANCE.md and docs/performance.md). Requests go through the
transport, never the client, which would read a redirect's ``Location``.
Redirects that are not sampled for tracing take another way: batched
lookups on aiohttp alone (gateway/lookups.py, ADR 0012).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from httpx_aiohttp import AiohttpTransport
from opentelemetry import propagate
from starlette.types import Receive, Scope, Send

from gateway.config import GatewaySettings
from gateway.fallback import Fallback, Outage
from gateway.headers import FORWARDING, HOP_BY_HOP, RESPONSE_DROP
from gateway.lookups import RedirectLookups
from gateway.resilience import BulkheadFull, UpstreamGuard
from gateway.routes import REDIRECT_TEMPLATE
from gateway.visits import sampled, serve_visit, settle_redirect
from services.chassis.breaker import BreakerOpen
from services.chassis.context import REQUEST_ID_HEADER, new_id, request_id_var
from services.chassis.errors import send_problem
from services.chassis.events import CLICK_ID_HEADER
from services.chassis.http import read_body
from services.chassis.identity import GatewaySigner, Identity
from services.chassis.tracing_http import traced_transport

__all__ = ["Upstream", "UpstreamProxy", "create_client", "create_transport"]

log = logging.getLogger(__name__)

_CLICK_ID = CLICK_ID_HEADER.encode()
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    base_url: str
    guard: UpstreamGuard


def create_transport(settings: GatewaySettings) -> httpx.AsyncBaseTransport:
    """aiohttp's transport under httpx's API, with a client span per request."""
    limits = httpx.Limits(
        max_connections=settings.upstream_max_connections,
        max_keepalive_connections=settings.upstream_max_connections,
    )
    return traced_transport(AiohttpTransport(limits=limits))


def create_client(
    settings: GatewaySettings, transport: httpx.AsyncBaseTransport
) -> httpx.AsyncClient:
    # Per-upstream read timeouts are set on each request (UpstreamGuard).
    timeout = httpx.Timeout(
        settings.user_timeout_seconds,
        connect=settings.upstream_connect_timeout_seconds,
        pool=settings.upstream_connect_timeout_seconds,
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        trust_env=False,  # never route service-to-service traffic through an env proxy
    )


class UpstreamProxy:
    """Forwards requests through the transport, below httpx's client.

    The client would read an answer as well as receive it: for a 3xx it
    parses the ``Location`` to build the next request, even with redirects
    off. A proxy forwards an answer, it does not read it; and a ``Location``
    is what a client stored in a link, so parsing it inside the breaker's
    guard let one client's link open the breaker for everyone (issue #16).
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        signer: GatewaySigner,
        max_body_bytes: int,
        fallback: Fallback,
        *,
        lookups: RedirectLookups | None = None,
    ) -> None:
        self.transport = transport
        self.signer = signer
        self.max_body_bytes = max_body_bytes
        self.fallback = fallback
        # Redirects not sampled for tracing go through batched lookups; None: each its own request.
        self.lookups = lookups
        # What a client sent that is not forwarded: hop-by-hop headers, those
        # the gateway sets itself, and a trace context (the configured
        # propagators' fields: traceparent, tracestate, baggage). The gateway
        # starts every trace and writes its own; a client's would pick our
        # trace ids and, through parent-based sampling, force its requests sampled.
        trace_fields = frozenset(f.encode() for f in propagate.get_global_textmap().fields)
        self.not_forwarded = HOP_BY_HOP | FORWARDING | trace_fields

    async def forward(  # noqa: PLR0917 - one request's parts, in ASGI order
        self,
        upstream: Upstream,
        scope: Scope,
        receive: Receive,
        send: Send,
        identity: Identity,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> int:
        """Forward one request on behalf of ``identity``; the status sent to the client."""
        method: str = scope["method"]
        body = b""
        if method not in _NO_BODY:
            read = await read_body(receive, self.max_body_bytes)
            if read is None:
                detail = f"The body must be at most {self.max_body_bytes} bytes."
                await send_problem(send, 413, "payload_too_large", "Payload too large", detail)
                return 413
            body = read
        guard = upstream.guard
        # A redirect (GET /{code}) may be replayed from the stale cache.
        code = scope["path"][1:] if _is_redirect(upstream, scope) else None
        # One id per visit, whoever ends up answering it (gateway/stale.py).
        click_id = new_id() if code is not None else None
        outage = Outage(upstream.name, scope, send, identity, extra_headers, code, click_id)
        if code is not None:
            fresh = await self.fallback.serve_fresh(outage)
            if fresh is not None:
                return fresh
        generation = self.fallback.stale.generation
        try:
            guard.bulkhead.acquire()
        except BulkheadFull:
            guard.failed("bulkhead_full")
            return await self.fallback.unavailable(outage, "bulkhead_full", 1.0)
        try:
            if code is not None and self.lookups is not None and not sampled():
                return await serve_visit(self.lookups, self.fallback, outage, generation)
            request = self._build(upstream, scope, identity, body, click_id)
            response = await self._send(guard, request, outage)
            if isinstance(response, int):
                return response
            return await self._answer(response, outage, generation)
        finally:
            guard.bulkhead.release()

    async def _answer(self, response: httpx.Response, outage: Outage, generation: int) -> int:
        """Relay the upstream's answer; a redirect's may be learned, or replaced by a stale one."""
        if outage.code is not None:
            headers = response.headers.raw
            stale = await settle_redirect(
                self.fallback, outage, response.status_code, headers, generation
            )
            if stale is not None:
                await response.aclose()
                return stale
        return await _relay(response, outage.send, outage.extra_headers)

    def _build(
        self,
        upstream: Upstream,
        scope: Scope,
        identity: Identity,
        body: bytes,
        click_id: str | None,
    ) -> httpx.Request:
        method: str = scope["method"]
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope["query_string"]
        url = (
            upstream.base_url
            + path.decode("latin-1")
            + ("?" + query.decode("latin-1") if query else "")
        )
        headers = _forwarded_headers(scope, self.not_forwarded)
        headers += self.signer.headers(method, path, identity)
        if click_id is not None:
            headers.append((_CLICK_ID, click_id.encode()))
        # Built here, not by the client: a proxy sends what its client sent,
        # without the client's default headers, and merging them was a tenth
        # of the gateway's CPU per proxied API call.
        return httpx.Request(
            method,
            url,
            headers=headers,
            content=body or None,
            extensions={"timeout": upstream.guard.timeouts},
        )

    async def _send(
        self, guard: UpstreamGuard, request: httpx.Request, outage: Outage
    ) -> httpx.Response | int:
        """The upstream's response, or the status of the fallback answer sent instead."""
        guard.budget.record_request()
        retries = 0
        while True:
            try:
                with guard.breaker.guard():
                    return await self.transport.handle_async_request(request)
            except BreakerOpen as exc:
                guard.failed("breaker_open")
                return await self.fallback.unavailable(outage, "breaker_open", exc.retry_after)
            except httpx.TransportError as exc:
                if _timed_out(exc):
                    guard.timed_out()
                    return await self.fallback.timed_out(outage)
                if await guard.retried(request.method, retries):
                    retries += 1
                    continue
                guard.unreachable(exc)
                return await self.fallback.unavailable(outage, "unavailable", 1.0)


async def _relay(
    response: httpx.Response, send: Send, extra_headers: list[tuple[bytes, bytes]]
) -> int:
    """Stream the upstream's answer to the client."""
    try:
        headers = [
            (k.lower(), v) for k, v in response.headers.raw if k.lower() not in RESPONSE_DROP
        ]
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": headers + extra_headers,
            }
        )
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await response.aclose()
    return response.status_code


def _is_redirect(upstream: Upstream, scope: Scope) -> bool:
    return (
        upstream.name == "link"
        and scope["method"] == "GET"
        and scope.get("route_template") == REDIRECT_TEMPLATE
    )


def _timed_out(exc: httpx.TransportError) -> bool:
    """Whether the upstream was too slow, as opposed to unreachable.

    httpx-aiohttp maps a refused connection to ``ConnectTimeout`` (its table
    prefers the first match), so the aiohttp cause is the one to trust.
    """
    if exc.__cause__ is not None:
        return isinstance(exc.__cause__, TimeoutError)
    return isinstance(exc, httpx.TimeoutException)


def _forwarded_headers(scope: Scope, not_forwarded: frozenset[bytes]) -> list[tuple[bytes, bytes]]:
    headers = [(k, v) for k, v in scope["headers"] if k not in not_forwarded]
    client = scope.get("client")
    peer = client[0].encode() if client else b""
    host = next((v for k, v in scope["headers"] if k == b"host"), b"")
    headers += [
        (b"x-forwarded-for", peer),
        (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
        (b"x-forwarded-host", host),
        (REQUEST_ID_HEADER.encode(), (request_id_var.get() or "").encode()),
    ]
    return headers
