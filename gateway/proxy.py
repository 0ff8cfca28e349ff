"""Forwarding one request to an upstream service and streaming the answer back.

Forwarded requests go out on aiohttp alone (gateway/clients.py):
httpx's transport forwards at a tenth of the speed here
(../shared/PERFORMANCE.md), and httpx's Request and Response objects over
aiohttp's transport (``httpx-aiohttp``, the gateway's own calls) were a
fifth of the gateway's CPU per proxied API call (docs/performance.md).
A redirect the gateway does not hold in memory is first looked up in the
link service's read model (gateway/readmodel.py, ADR 0022); those that
still need the link service and are not sampled for tracing go as batched
lookups (gateway/lookups.py, ADR 0012).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import aiohttp
from opentelemetry import propagate
from starlette.types import Receive, Scope, Send
from yarl import URL

from gateway.fallback import Fallback, Outage
from gateway.headers import FORWARDING, HOP_BY_HOP, RESPONSE_DROP
from gateway.lookups import RedirectLookups
from gateway.readmodel import RedirectReadModel
from gateway.resilience import BulkheadFull, UpstreamGuard
from gateway.routes import REDIRECT_TEMPLATE
from gateway.visits import sampled, serve_visit, settle_redirect
from services.chassis.breaker import BreakerOpen
from services.chassis.context import REQUEST_ID_HEADER, new_id, request_id_var
from services.chassis.deadline import timeout_header
from services.chassis.errors import send_problem
from services.chassis.events import CLICK_ID_HEADER
from services.chassis.http import read_body
from services.chassis.identity import GatewaySigner, Identity
from services.chassis.tracing import current_tracer
from services.chassis.tracing_http import client_span, record_status

__all__ = ["Upstream", "UpstreamProxy"]

log = logging.getLogger(__name__)

_CLICK_ID = CLICK_ID_HEADER.encode()
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    base_url: str
    guard: UpstreamGuard
    # aiohttp's form of the guard's timeouts, as httpx-aiohttp maps httpx's.
    timeout: aiohttp.ClientTimeout = field(init=False)
    # Tells the upstream how long this gateway waits for its answer
    # (services/chassis/deadline.py): the read timeout, from the request sent.
    budget: tuple[bytes, bytes] = field(init=False)

    def __post_init__(self) -> None:
        t = self.guard.timeouts
        timeout = aiohttp.ClientTimeout(
            sock_connect=t["connect"], sock_read=t["read"], connect=t["pool"]
        )
        object.__setattr__(self, "timeout", timeout)
        name, value = timeout_header(t["read"])
        object.__setattr__(self, "budget", (name.encode(), value.encode()))


class UpstreamProxy:
    """Forwards requests on an aiohttp session, redirects never followed.

    A client that follows redirects reads an answer as well as receiving it:
    httpx's parsed a 3xx's ``Location`` to build the next request even with
    redirects off. A proxy forwards an answer, it does not read it; and a
    ``Location`` is what a client stored in a link, so parsing it inside the
    breaker's guard let one client's link open the breaker for everyone
    (issue #16). aiohttp with ``allow_redirects=False`` does not look at it.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        signer: GatewaySigner,
        max_body_bytes: int,
        fallback: Fallback,
        *,
        lookups: RedirectLookups | None = None,
        read_model: RedirectReadModel | None = None,
    ) -> None:
        self.session = session
        self.tracer = current_tracer()
        self.signer = signer
        self.max_body_bytes = max_body_bytes
        self.fallback = fallback
        # Redirects not sampled for tracing go through batched lookups; None: each its own request.
        self.lookups = lookups
        # Redirects not in memory are looked up here before the link hop; None: never.
        self.read_model = read_model
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
        generation = self.fallback.stale.generation
        if code is not None:
            here = await self._answer_here(outage, generation)
            if here is not None:
                return here
        try:
            guard.bulkhead.acquire()
        except BulkheadFull:
            guard.failed("bulkhead_full")
            return await self.fallback.unavailable(outage, "bulkhead_full", 1.0)
        try:
            if code is not None and self.lookups is not None and not sampled():
                return await serve_visit(self.lookups, self.fallback, outage, generation)
            url, headers = self._build(upstream, scope, identity, click_id)
            response = await self._send(upstream, url, headers, body, outage)
            if isinstance(response, int):
                return response
            return await self._answer(response, outage, generation)
        finally:
            guard.bulkhead.release()

    async def _answer_here(self, outage: Outage, generation: int) -> int | None:
        """A redirect answered without the link hop (from memory, else from
        the read model); its status, or None."""
        fresh = await self.fallback.serve_fresh(outage)
        if fresh is None and self.read_model is not None:
            return await self.read_model.serve(self.fallback, outage, generation)
        return fresh

    async def _answer(
        self, response: aiohttp.ClientResponse, outage: Outage, generation: int
    ) -> int:
        """Relay the upstream's answer; a redirect's may be learned, or replaced by a stale one."""
        if outage.code is not None:
            stale = await settle_redirect(
                self.fallback, outage, response.status, response.raw_headers, generation
            )
            if stale is not None:
                response.release()
                return stale
        return await _relay(response, outage.send, outage.extra_headers)

    def _build(
        self, upstream: Upstream, scope: Scope, identity: Identity, click_id: str | None
    ) -> tuple[str, list[tuple[str, str]]]:
        """The URL and headers of the request to ``upstream``: the client's, as they came."""
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope["query_string"]
        url = (
            upstream.base_url
            + path.decode("latin-1")
            + ("?" + query.decode("latin-1") if query else "")
        )
        headers = _forwarded_headers(scope, self.not_forwarded)
        headers += self.signer.headers(scope["method"], path, identity)
        headers.append(upstream.budget)
        if click_id is not None:
            headers.append((_CLICK_ID, click_id.encode()))
        return url, [(k.decode("latin-1"), _text(v)) for k, v in headers]

    async def _send(
        self,
        upstream: Upstream,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        outage: Outage,
    ) -> aiohttp.ClientResponse | int:
        """The upstream's response, or the status of the fallback answer sent instead."""
        guard = upstream.guard
        method: str = outage.scope["method"]
        guard.budget.record_request()
        retries = 0
        while True:
            carrier: dict[str, str] = {}
            try:
                with client_span(self.tracer, method, url, carrier) as span:
                    with guard.breaker.guard():
                        response = await self.session.request(
                            method,
                            # As it is: no quoting again, no dot segments removed.
                            URL(url, encoded=True),
                            headers=[*headers, *carrier.items()],
                            data=body or None,
                            allow_redirects=False,
                            compress=False,
                            timeout=upstream.timeout,
                        )
                    record_status(span, response.status)
                    return response
            except BreakerOpen as exc:
                guard.failed("breaker_open")
                return await self.fallback.unavailable(outage, "breaker_open", exc.retry_after)
            except TimeoutError:  # aiohttp's own timeouts are TimeoutErrors too
                guard.timed_out()
                return await self.fallback.timed_out(outage)
            except aiohttp.ClientError as exc:
                if await guard.retried(method, retries):
                    retries += 1
                    continue
                guard.unreachable(exc)
                return await self.fallback.unavailable(outage, "unavailable", 1.0)


async def _relay(
    response: aiohttp.ClientResponse, send: Send, extra_headers: list[tuple[bytes, bytes]]
) -> int:
    """Stream the upstream's answer to the client."""
    try:
        headers = [
            (k.lower(), v) for k, v in response.raw_headers if k.lower() not in RESPONSE_DROP
        ]
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": headers + extra_headers,
            }
        )
        async for chunk in response.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        response.release()
    return response.status


def _is_redirect(upstream: Upstream, scope: Scope) -> bool:
    return (
        upstream.name == "link"
        and scope["method"] == "GET"
        and scope.get("route_template") == REDIRECT_TEMPLATE
    )


def _text(value: bytes) -> str:
    """A header value as aiohttp wants it: it writes values as UTF-8, so bytes
    that are UTF-8 go out as they came; others (Latin-1) cannot, and are sent
    as the UTF-8 of their characters, as httpx-aiohttp did."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("latin-1")


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
