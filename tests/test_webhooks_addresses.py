"""The refused-address table against Python's ``ipaddress``, over generated addresses.

The table in services/webhooks/addresses.py is written from the IANA registries;
``ipaddress`` is an independent reading of them. Whatever ``ipaddress`` calls
private, loopback, link-local, multicast, reserved or unspecified must be
refused; whatever it calls global must be allowed, except the few blocks refused
on purpose (listed here, each with its reason in the table).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_network

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.webhooks.addresses import IPAddress, effective_address, is_public
from services.webhooks.egress import Egress, EgressPolicy

REFUSED_ON_PURPOSE = [
    ip_network(cidr) for cidr in ("192.0.0.0/24", "192.88.99.0/24", "2001::/23", "3fff::/20")
]


def python_calls_private(address: IPAddress) -> bool:
    flags = [address.is_private, address.is_loopback, address.is_link_local]
    flags += [address.is_multicast, address.is_reserved, address.is_unspecified]
    flags += [isinstance(address, IPv6Address) and address.is_site_local]
    return not address.is_global or any(flags)


@given(st.ip_addresses())
def test_what_python_calls_private_is_refused(address: IPAddress) -> None:
    if python_calls_private(effective_address(address)):
        assert not is_public(address)


@given(st.ip_addresses())
def test_what_python_calls_global_is_allowed(address: IPAddress) -> None:
    target = effective_address(address)
    assume(not python_calls_private(target))
    assume(not any(target.version == n.version and target in n for n in REFUSED_ON_PURPOSE))
    assert is_public(address)


@given(st.ip_addresses(v=4))
def test_ipv6_forms_carrying_an_ipv4_are_judged_by_it(v4: IPv4Address) -> None:
    forms = [
        IPv6Address(f"::ffff:{v4}"),  # IPv4-mapped
        IPv6Address(int(v4)),  # IPv4-compatible (deprecated)
        IPv6Address((0x2002 << 112) | (int(v4) << 80)),  # 6to4
        IPv6Address(int(IPv6Address("64:ff9b::")) | int(v4)),  # NAT64 well-known prefix
    ]
    assert {form: is_public(form) for form in forms} == dict.fromkeys(forms, is_public(v4))


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("::ffff:127.0.0.1", True),  # the same loopback address, the IPv6 way
        ("::1", False),  # 127.0.0.0/8 says nothing about IPv6 loopback
        ("10.0.0.1", False),
        ("169.254.169.254", False),
        ("8.8.8.8", True),
    ],
)
def test_allowed_networks_open_only_themselves(address: str, allowed: bool) -> None:
    egress = Egress(EgressPolicy(allowed_networks=("127.0.0.0/8",)))
    parsed = IPv6Address(address) if ":" in address else IPv4Address(address)
    assert egress.allows(parsed) is allowed
