"""SSRF-safe egress: refused addresses never see a byte; the rest is cut off on time and size.

Every receiver is a real server on a loopback address, so "refused" is shown
against a server that would have answered: the same URL is delivered when the
policy allows 127.0.0.0/8. Names are resolved by an injected resolver (there is
no DNS in the test machine), which is also how DNS rebinding is staged.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from infra.devstack.processes import free_port
from services.webhooks.egress import Egress, EgressPolicy, Outcome, Resolver
from tests.webhook_receivers import receiver, respond, self_signed_tls, trickle

LOOPBACK_ONLY = EgressPolicy(allowed_networks=("127.0.0.0/8",))
QUICK = EgressPolicy(allowed_networks=("127.0.0.0/8",), connect_timeout=1.0, total_timeout=1.0)


class Answers:
    """A resolver that answers each lookup with the next list, the last one forever."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self._answers = list(answers)
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        answer = self._answers[min(len(self.asked), len(self._answers)) - 1]
        if not answer:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answer


@asynccontextmanager
async def egress(policy: EgressPolicy, resolver: Resolver | None = None) -> AsyncIterator[Egress]:
    client = Egress(policy) if resolver is None else Egress(policy, resolver=resolver)
    try:
        yield client
    finally:
        await client.aclose()


async def post(policy: EgressPolicy, url: str, resolver: Resolver | None = None) -> Outcome:
    async with egress(policy, resolver) as client:
        return await client.post(
            url, b'{"type": "link.clicked"}', {"content-type": "application/json"}
        )


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "2130706433"]
)
async def test_loopback_is_refused_and_the_same_url_delivered_when_allowed(host: str) -> None:
    async with receiver(respond(204)) as hook:
        refused = await post(EgressPolicy(), hook.url(host))
        assert (refused.error, refused.status, refused.address) == ("refused_address", None, None)
        assert hook.requests == []

        delivered = await post(LOOPBACK_ONLY, hook.url(host))
        assert (delivered.error, delivered.status, delivered.address) == (None, 204, "127.0.0.1")
        assert len(hook.requests) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1]:8004/",
        "http://10.0.0.1/",
        "http://172.16.4.2/",
        "http://172.31.255.254/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://[64:ff9b::a00:1]/",
        "http://[2002:a00:1::]/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ],
)
async def test_private_link_local_and_metadata_addresses_are_refused(url: str) -> None:
    # The metadata name "resolves" to a public address: it is refused by name.
    outcome = await post(EgressPolicy(), url, Answers(["8.8.8.8"]))
    assert (outcome.error, outcome.address) == ("refused_address", None)


async def test_a_name_that_resolves_to_loopback_is_refused() -> None:
    async with receiver(respond(200, b"ok")) as hook:
        names = Answers(["127.0.0.1"])
        refused = await post(EgressPolicy(), hook.url("hooks.example"), names)
        delivered = await post(LOOPBACK_ONLY, hook.url("hooks.example"), names)

    assert refused.error == "refused_address"
    assert (delivered.status, delivered.excerpt, delivered.address) == (200, "ok", "127.0.0.1")
    assert len(hook.requests) == 1
    assert b"host: hooks.example:" in hook.requests[0].lower()


async def test_one_private_address_among_public_ones_refuses_the_name() -> None:
    async with receiver(respond(204)) as hook:
        outcome = await post(
            EgressPolicy(), hook.url("hooks.example"), Answers(["8.8.8.8", "127.0.0.1"])
        )
    assert outcome.error == "refused_address"
    assert hook.requests == []


async def test_dns_rebinding_cannot_move_the_connection_to_a_refused_address() -> None:
    """The name answers an allowed address, then 127.0.0.1: each connect uses what it checked."""
    names = Answers(["127.0.0.2"], ["127.0.0.1"])
    policy = EgressPolicy(allowed_networks=("127.0.0.2/32",))
    async with (
        receiver(respond(200, b"victim")) as victim,
        receiver(respond(200, b"checked"), "127.0.0.2", victim.port) as checked,
        egress(policy, names) as client,
    ):
        first = await client.post(checked.url("rebind.example"), b"", {})
        # The receiver closed that connection; a new one resolves again.
        second = await client.post(checked.url("rebind.example"), b"", {})

    assert (first.status, first.excerpt, first.address) == (200, "checked", "127.0.0.2")
    assert second.error == "refused_address"
    assert victim.requests == []
    assert names.asked == ["rebind.example", "rebind.example"]


async def test_allow_private_is_the_local_testing_switch() -> None:
    async with receiver(respond(202)) as hook:
        outcome = await post(EgressPolicy(allow_private=True), hook.url("localhost"))
    assert (outcome.status, outcome.error) == (202, None)


async def test_a_redirect_is_returned_not_followed() -> None:
    async with receiver(respond(204)) as target:
        moved = respond(302, b"moved", {"Location": target.url()})
        async with receiver(moved) as hook:
            outcome = await post(LOOPBACK_ONLY, hook.url())
    assert (outcome.status, outcome.excerpt, outcome.error) == (302, "moved", None)
    assert target.requests == []


async def test_an_oversized_response_is_cut_and_keeps_its_status() -> None:
    policy = EgressPolicy(
        allowed_networks=("127.0.0.0/8",), max_response_bytes=4096, excerpt_bytes=16
    )
    huge = b"A" * 1_000_000
    async with receiver(respond(200, huge)) as hook:
        outcome = await post(policy, hook.url())
    assert (outcome.status, outcome.error) == (200, "response_too_large")
    assert outcome.excerpt == "A" * 16


async def test_the_excerpt_is_decoded_with_replacement() -> None:
    policy = EgressPolicy(allowed_networks=("127.0.0.0/8",), excerpt_bytes=3)
    async with receiver(respond(500, "ü!!".encode())) as hook:
        outcome = await post(policy, hook.url())
    assert (outcome.status, outcome.excerpt, outcome.error) == (500, "ü!", None)


async def test_headers_trickled_a_byte_at_a_time_time_out_within_the_budget() -> None:
    slow = trickle(b"HTTP/1.1 200 OK\r\n", b"X-Slow: yes\r\n", interval=0.05, drops=200)
    async with receiver(slow) as hook:
        outcome = await post(QUICK, hook.url())
    assert (outcome.status, outcome.error) == (None, "timeout")
    assert QUICK.total_timeout <= outcome.latency_seconds < QUICK.total_timeout + 0.5


async def test_a_body_trickled_a_byte_at_a_time_times_out_and_keeps_its_status() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    async with receiver(trickle(head, b"slow", interval=0.05, drops=200)) as hook:
        outcome = await post(QUICK, hook.url())
    assert (outcome.status, outcome.error) == (200, "timeout")
    assert outcome.excerpt.startswith("slow")
    assert outcome.latency_seconds < QUICK.total_timeout + 0.5


async def test_a_resolver_that_hangs_is_cut_off_by_the_connect_timeout() -> None:
    async def hangs(host: str, port: int) -> Sequence[str]:
        await asyncio.sleep(30)
        return ["127.0.0.1"]

    policy = EgressPolicy(allowed_networks=("127.0.0.0/8",), connect_timeout=0.3)
    outcome = await post(policy, "http://slow-dns.example/", hangs)
    assert (outcome.status, outcome.error) == (None, "timeout")
    assert outcome.latency_seconds < policy.connect_timeout + 0.5


async def test_nothing_listening_is_connect_failed() -> None:
    outcome = await post(QUICK, f"http://127.0.0.1:{free_port()}/")
    assert (outcome.status, outcome.error, outcome.address) == (None, "connect_failed", None)


async def test_a_certificate_that_does_not_verify_is_a_tls_error_and_sni_names_the_host(
    tmp_path: Path,
) -> None:
    tls = self_signed_tls("hooks.example", tmp_path)
    async with receiver(respond(204), tls=tls) as hook:
        url = f"https://hooks.example:{hook.port}/"
        outcome = await post(LOOPBACK_ONLY, url, Answers(["127.0.0.1"]))
    assert outcome.error == "tls_error"
    assert hook.server_names == ["hooks.example"]
    assert hook.requests == []


async def test_no_proxy_is_taken_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with receiver(respond(407)) as proxy, receiver(respond(204)) as hook:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url(path=""))
        outcome = await post(LOOPBACK_ONLY, hook.url())
    assert outcome.status == 204
    assert proxy.requests == []


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://hooks.example/", "invalid_url"),
        ("hooks.example/no-scheme", "invalid_url"),
        ("http:///no-host", "invalid_url"),
        ("http://nowhere.example/", "dns_failure"),
    ],
)
async def test_urls_that_cannot_be_delivered(url: str, error: str) -> None:
    outcome = await post(EgressPolicy(), url, Answers([]))
    assert (outcome.status, outcome.error) == (None, error)


async def test_a_receiver_that_hangs_up_is_a_protocol_error() -> None:
    async def hang_up(writer: asyncio.StreamWriter) -> None:
        writer.write(b"NOT HTTP\r\n\r\n")
        await writer.drain()

    async with receiver(hang_up) as hook:
        outcome = await post(LOOPBACK_ONLY, hook.url())
    assert (outcome.status, outcome.error) == (None, "protocol_error")


def test_allowed_networks_must_be_cidrs() -> None:
    with pytest.raises(ValueError, match="does not appear to be"):
        Egress(EgressPolicy(allowed_networks=("loopback",)))
