"""The gateway's HTTP clients: the proxy's aiohttp session, and httpx for its own calls.

Forwarded requests go out on an aiohttp session that adds and keeps nothing
(ADR 0016); the gateway's own calls (API keys, signing keys, the merged
OpenAPI document, health probes) use httpx's API on aiohttp's transport,
with a client span each (ADR 0006). Batched redirect lookups have their
own session (gateway/lookups.py).
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from gateway.config import GatewaySettings
from services.chassis.tracing_http import traced_transport

__all__ = ["create_client", "create_proxy_session", "create_transport"]

# What aiohttp would add to a request that does not carry them.
_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


def create_proxy_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """The session forwarded requests go out on: it adds nothing and keeps nothing.

    No cookie jar (a cookie one caller's answer set would go out with the
    next caller's request), no headers of its own (a proxy sends what its
    client sent), and an answer's body is relayed as it came, never
    decompressed.
    """
    connector = aiohttp.TCPConnector(limit=settings.upstream_max_connections, keepalive_timeout=30)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=_AUTO_HEADERS,
        auto_decompress=False,
        trust_env=False,  # never through an environment's proxy
    )


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
