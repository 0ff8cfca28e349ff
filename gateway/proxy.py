"""Forwarding one request to an upstream service and streaming the answer back.

The client is httpx's API over aiohttp's transport (``httpx-aiohttp``):
httpx's own transport forwards at a tenth of the speed on this path (see
../shared/PERFORMANCE.md and docs/performance.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from httpx_aiohttp import AiohttpTransport
from starlette.types import Receive, Scope, Send

from gateway.config import GatewaySettings
from services.chassis.context import REQUEST_ID_HEADER, request_id_var
from services.chassis.errors import send_problem
from services.chassis.http import read_body
from services.chassis.identity import GatewaySigner, Identity
from services.chassis.tracing import traced_transport

__all__ = ["Upstream", "UpstreamProxy", "create_client"]

log = logging.getLogger(__name__)

# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection, never forwarded.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Set by the gateway from what it saw; a client's own values are discarded,
# so a service can trust them (issue: trusted proxies for an edge in front).
FORWARDING = frozenset(
    {
        b"host",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        b"x-real-ip",
        REQUEST_ID_HEADER.encode(),
        b"content-length",
    }
)
# Added again by this process's own server and middleware.
_RESPONSE_DROP = HOP_BY_HOP | {b"date", b"server", REQUEST_ID_HEADER.encode()}
_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    base_url: str


def create_client(settings: GatewaySettings) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=settings.upstream_max_connections,
        max_keepalive_connections=settings.upstream_max_connections,
    )
    timeout = httpx.Timeout(
        settings.upstream_timeout_seconds,
        connect=settings.upstream_connect_timeout_seconds,
        pool=settings.upstream_connect_timeout_seconds,
    )
    return httpx.AsyncClient(
        # A client span per upstream call, and the trace context in its headers.
        transport=traced_transport(AiohttpTransport(limits=limits)),
        timeout=timeout,
        trust_env=False,  # never route service-to-service traffic through an env proxy
    )


class UpstreamProxy:
    def __init__(
        self, client: httpx.AsyncClient, signer: GatewaySigner, max_body_bytes: int
    ) -> None:
        self.client = client
        self.signer = signer
        self.max_body_bytes = max_body_bytes

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
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope["query_string"]
        url = (
            upstream.base_url
            + path.decode("latin-1")
            + ("?" + query.decode("latin-1") if query else "")
        )
        headers = _forwarded_headers(scope) + self.signer.headers(method, path, identity)
        request = self.client.build_request(method, url, headers=headers, content=body or None)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            if _timed_out(exc):
                log.warning("upstream timed out", extra={"upstream": upstream.name})
                detail = f"The {upstream.name} service did not answer in time."
                await send_problem(send, 504, "upstream_timeout", "Upstream timeout", detail)
                return 504
            log.warning(
                "upstream unreachable", extra={"upstream": upstream.name, "error": repr(exc)}
            )
            detail = f"The {upstream.name} service is unavailable."
            await send_problem(
                send,
                503,
                "upstream_unavailable",
                "Upstream unavailable",
                detail,
                headers=[(b"retry-after", b"1")],
            )
            return 503
        try:
            headers = [
                (k.lower(), v) for k, v in response.headers.raw if k.lower() not in _RESPONSE_DROP
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


def _timed_out(exc: httpx.TransportError) -> bool:
    """Whether the upstream was too slow, as opposed to unreachable.

    httpx-aiohttp maps a refused connection to ``ConnectTimeout`` (its table
    prefers the first match), so the aiohttp cause is the one to trust.
    """
    if exc.__cause__ is not None:
        return isinstance(exc.__cause__, TimeoutError)
    return isinstance(exc, httpx.TimeoutException)


def _forwarded_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    headers = [(k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP and k not in FORWARDING]
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
