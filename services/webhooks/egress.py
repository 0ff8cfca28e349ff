"""Outbound HTTP for webhook deliveries, safe to point at any URL an owner types.

A webhook URL is chosen by a user, so without care the service becomes a way
into the network it runs in (server-side request forgery): the cloud's metadata
service at 169.254.169.254, the databases on 10.x, the service's own admin
port on 127.0.0.1. The check that stops it must hold for the address the socket
really connects to. Checking the name and then letting the client resolve it
again loses to DNS rebinding (the name answers a public address to the check
and 127.0.0.1 to the connect), and checking before a redirect loses to the
redirect.

How: httpcore's connection pool opens every TCP connection through one
extension point, ``AsyncNetworkBackend.connect_tcp(host, port)``; the backend in
``backend.py`` resolves the name once, checks every address against
``addresses.py`` and connects to the checked IP itself, and TLS is still
verified against the URL's hostname. httpcore rather
than httpx (whose transport takes no network backend) or aiohttp (whose resolver
hook sits behind its own DNS cache): at this layer redirects, proxies from the
environment and cookies do not exist, so none can be left switched on. httpx
only builds the request (URL parsing, IDNA, ``Host``, ``Content-Length``).

Budget: ``connect_timeout`` covers resolving and connecting; ``total_timeout``
covers everything from resolving to the last body byte, so a receiver that
trickles its headers or body one byte at a time is cut off on time. At most
``max_response_bytes`` of the body are read; the first ``excerpt_bytes`` are
kept for the delivery log.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpcore
import httpx

from services.webhooks.addresses import IPAddress, effective_address, is_public, parse_networks
from services.webhooks.backend import (
    CheckedBackend,
    Refused,
    Resolver,
    Unresolvable,
    connected_to,
    system_resolver,
)

__all__ = ["Egress", "EgressPolicy", "Outcome", "Resolver", "system_resolver"]


@dataclass(frozen=True)
class EgressPolicy:
    """Where deliveries may go and how long and large they may be."""

    allow_private: bool = False  # loopback/private/link-local/metadata allowed (local testing only)
    allowed_networks: tuple[str, ...] = ()  # CIDRs allowed even though private
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    max_response_bytes: int = 65536
    excerpt_bytes: int = 1024


@dataclass(frozen=True)
class Outcome:
    """One delivery attempt, as the delivery log records it.

    ``error`` is None when a response arrived and was read in full; otherwise one of
    refused_address, dns_failure, connect_failed, timeout, response_too_large,
    tls_error, invalid_url, protocol_error. ``status`` is kept when the error came
    after the headers (a body too large, or too slow).
    """

    status: int | None
    latency_seconds: float
    excerpt: str
    error: str | None
    address: str | None


class _InvalidURL(Exception):
    """Not an absolute http(s) URL."""


@dataclass
class _Exchange:
    """What is known so far about one delivery; a timeout can come at any point."""

    status: int | None = None
    body: bytes = b""
    error: str | None = None
    address: str | None = None


class Egress:
    """Posts webhook payloads under an :class:`EgressPolicy`; one per service, closed on shutdown.

    ``resolver`` exists for tests (and a future DNS client); by default the system's.
    """

    def __init__(self, policy: EgressPolicy, *, resolver: Resolver = system_resolver) -> None:
        self._policy = policy
        self._networks = parse_networks(policy.allowed_networks)
        self._timeouts = {
            "connect": policy.connect_timeout,
            "read": policy.total_timeout,
            "write": policy.total_timeout,
            "pool": policy.total_timeout,
        }
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpcore.default_ssl_context(),
            max_connections=None,  # per-endpoint limits are the dispatcher's, not a global cap
            max_keepalive_connections=64,
            keepalive_expiry=30.0,
            network_backend=CheckedBackend(self.allows, resolver, policy.allow_private),
        )

    def allows(self, address: IPAddress) -> bool:
        """Whether the policy lets a delivery connect to this address."""
        if self._policy.allow_private or is_public(address):
            return True
        return any(
            candidate.version == network.version and candidate in network
            for candidate in {address, effective_address(address)}
            for network in self._networks
        )

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        """POST ``body`` to ``url``; never raises for anything the receiver or network does."""
        started = time.perf_counter()
        exchange = _Exchange()
        connected: list[str] = []
        token = connected_to.set(connected)
        try:
            async with asyncio.timeout(self._policy.total_timeout):
                await self._exchange(url, body, headers, exchange)
        except Exception as exc:
            exchange.error = _error_of(exc)
        finally:
            connected_to.reset(token)
        excerpt = exchange.body[: self._policy.excerpt_bytes]
        return Outcome(
            status=exchange.status,
            latency_seconds=time.perf_counter() - started,
            excerpt=excerpt.decode("utf-8", errors="replace"),
            error=exchange.error,
            address=connected[-1] if connected else exchange.address,
        )

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._pool.aclose()

    async def _exchange(
        self, url: str, body: bytes, headers: Mapping[str, str], exchange: _Exchange
    ) -> None:
        request = _request(url, body, headers)
        target = httpcore.URL(
            scheme=request.url.raw_scheme,
            host=request.url.raw_host,
            port=request.url.port,
            target=request.url.raw_path,
        )
        async with self._pool.stream(
            "POST",
            target,
            headers=request.headers.raw,
            content=body,
            extensions={"timeout": self._timeouts},
        ) as response:
            exchange.status = response.status
            exchange.address = _peer(response)
            received = bytearray()
            async for chunk in response.aiter_stream():
                received += chunk
                exchange.body = bytes(received[: self._policy.excerpt_bytes])
                if len(received) > self._policy.max_response_bytes:
                    exchange.error = "response_too_large"
                    return


def _request(url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Request:
    try:
        request = httpx.Request("POST", url, headers=dict(headers), content=body)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise _InvalidURL(url) from exc
    if request.url.scheme not in ("http", "https") or not request.url.host:
        raise _InvalidURL(url)
    return request


def _peer(response: httpcore.Response) -> str | None:
    """The address a reused connection is connected to."""
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    return str(peer[0]) if peer else None


def _error_of(exc: Exception) -> str:
    """The Outcome error for an exception; anything not listed is a bug and propagates."""
    if isinstance(exc, Refused):
        return "refused_address"
    if isinstance(exc, Unresolvable):
        return "dns_failure"
    if isinstance(exc, _InvalidURL | httpcore.UnsupportedProtocol):
        return "invalid_url"
    if isinstance(exc, TimeoutError | httpcore.TimeoutException):
        return "timeout"
    if isinstance(exc, httpcore.ConnectError):
        return "tls_error" if _from_tls(exc) else "connect_failed"
    if isinstance(exc, httpcore.ProtocolError | httpcore.NetworkError):
        return "protocol_error"
    raise exc


def _from_tls(exc: BaseException) -> bool:
    """Whether an ssl.SSLError is behind this error (the pool re-raises ``from None``)."""
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, ssl.SSLError) or (cause is not None and _from_tls(cause))
