"""The one place a webhook delivery opens a connection: to addresses it has just checked.

httpcore opens every TCP connection of its pool through
``AsyncNetworkBackend.connect_tcp(host, port)``. This backend resolves the name
once, refuses the whole name if any of its addresses is not allowed (or if it
is a cloud metadata name), and connects to the checked address itself, so a
name cannot answer one address to the check and another to the connect (DNS
rebinding). TLS is started afterwards by httpcore with the URL's hostname, so
certificates are still verified against the name and SNI carries it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from ipaddress import IPv6Address

import httpcore

from services.webhooks.addresses import METADATA_NAMES, IPAddress, parse_address

__all__ = [
    "CheckedBackend",
    "Refused",
    "Resolver",
    "Unresolvable",
    "connected_to",
    "system_resolver",
]

# host, port -> the addresses the name has (IP literals as text).
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """The operating system's resolver, without blocking the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class Refused(Exception):
    """The name, or one of its addresses, is not one deliveries may reach."""


class Unresolvable(Exception):
    """The name has no address."""


# The address the current delivery connected to, written by the backend. A
# context variable because httpcore opens the connection inside the caller's task.
connected_to: ContextVar[list[str] | None] = ContextVar("webhook_connected_to", default=None)


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to resolved addresses the policy allows, and to exactly those."""

    def __init__(
        self, allows: Callable[[IPAddress], bool], resolver: Resolver, allow_private: bool
    ) -> None:
        self._allows = allows
        self._resolver = resolver
        self._allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._checked_addresses(host, port)
                return await self._connect_first(addresses, port, local_address, socket_options)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no connection to {host} in {timeout}s") from exc

    async def _checked_addresses(self, host: str, port: int) -> list[IPAddress]:
        literal = parse_address(host)
        if literal is not None:
            candidates = [literal]
        else:
            if not self._allow_private and host.rstrip(".") in METADATA_NAMES:
                raise Refused(host)
            try:
                answers = await self._resolver(host, port)
            except OSError as exc:
                raise Unresolvable(host) from exc
            candidates = [a for a in map(parse_address, answers) if a is not None]
            if not candidates:
                raise Unresolvable(host)
        refused = [str(a) for a in candidates if not self._allows(a)]
        if refused:
            raise Refused(f"{host} -> {', '.join(refused)}")
        return list(dict.fromkeys(candidates))

    async def _connect_first(
        self,
        addresses: list[IPAddress],
        port: int,
        local_address: str | None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None,
    ) -> httpcore.AsyncNetworkStream:
        failure: httpcore.ConnectError | None = None
        for checked in addresses:
            # An IPv4-mapped address is the IPv4 one; connect (and record) it as such.
            mapped = checked.ipv4_mapped if isinstance(checked, IPv6Address) else None
            address = mapped or checked
            try:
                stream = await self._inner.connect_tcp(
                    str(address), port, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            record = connected_to.get()
            if record is not None:
                record.append(str(address))
            return stream
        assert failure is not None  # addresses is never empty
        raise failure

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
