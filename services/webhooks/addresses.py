"""Which addresses a webhook may be delivered to: the public internet only, by default.

The refused ranges are written out from the IANA special-purpose address
registries rather than taken from ``ipaddress``'s ``is_global``: that table
changes between Python versions (3.12.4 and 3.13 moved several blocks), and
the set of places a delivery must never reach should not move with the
interpreter. ``tests/test_webhooks_egress.py`` checks this table against
``ipaddress`` with generated addresses, so a gap in either shows.

IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``,
IPv4-compatible ``::a.b.c.d``, 6to4 ``2002:AABB:CCDD::``, NAT64
``64:ff9b::a.b.c.d``) are judged by the IPv4 address inside them, so
``[::ffff:127.0.0.1]`` is loopback, as it is to the kernel.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

__all__ = [
    "METADATA_NAMES",
    "IPAddress",
    "IPNetwork",
    "effective_address",
    "is_public",
    "parse_address",
    "parse_networks",
]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_REFUSED_V4 = tuple(
    IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network", the unspecified address
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # CGNAT shared space; 100.100.100.200 is a cloud metadata address
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, 169.254.169.254 the metadata service of most clouds
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
    )
)

# Only 2000::/3 is allocated as global unicast; everything outside it (loopback,
# unspecified, fc00::/7 unique-local, fe80::/10 link-local, fec0::/10 site-local,
# ff00::/8 multicast, the reserved blocks) is refused by that one line.
_GLOBAL_UNICAST_V6 = IPv6Network("2000::/3")
_REFUSED_V6 = tuple(
    IPv6Network(cidr)
    for cidr in (
        "2001::/23",  # IETF protocol assignments, Teredo among them
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
    )
)

_IPV4_COMPATIBLE = IPv6Network("::/96")
_NAT64 = IPv6Network("64:ff9b::/96")

# Names that reach a cloud's instance metadata service without going through
# an address that looks like one everywhere (GCE answers `metadata`).
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)


def effective_address(address: IPAddress) -> IPAddress:
    """The address a packet really goes to: the IPv4 inside an IPv6 form that carries one."""
    if isinstance(address, IPv4Address):
        return address
    embedded = address.ipv4_mapped or address.sixtofour
    if embedded is not None:
        return embedded
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_public(address: IPAddress) -> bool:
    """Whether the address is on the public internet (after unwrapping embedded IPv4)."""
    target = effective_address(address)
    if isinstance(target, IPv4Address):
        return not any(target in network for network in _REFUSED_V4)
    return target in _GLOBAL_UNICAST_V6 and not any(target in net for net in _REFUSED_V6)


def parse_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """CIDRs as networks; a bare address is a /32 or /128. Raises ValueError on nonsense."""
    return tuple(ip_network(cidr, strict=False) for cidr in cidrs)


def parse_address(text: str) -> IPAddress | None:
    """An IP literal, or None for a name (a zone index such as ``%eth0`` is dropped)."""
    try:
        return ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
