"""Which address a request really came from.

``X-Forwarded-For`` is whatever the client wrote, unless a proxy we run
wrote it. So it is read only when the connection comes from a configured
trusted proxy (``GATEWAY_TRUSTED_PROXIES``), and then from the right: the
nearest address that is not one of our proxies is the client. A client that
sends its own ``X-Forwarded-For`` through our edge only adds entries to the
left of the ones we trust, so it cannot pick its rate-limit key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

__all__ = ["ClientAddress"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddress:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self.trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(cidr.strip(), strict=False)
            for cidr in trusted_proxies
            if cidr.strip()
        )

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def of(self, scope: Scope) -> str:
        client = scope.get("client")
        peer: str = client[0] if client else ""
        if not self.trusted or not self._is_trusted(peer):
            return peer
        forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for")
        hops = [hop.strip() for hop in forwarded.decode("latin-1").split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer  # garbage where an address should be: trust nothing
        return peer
