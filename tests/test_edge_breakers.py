"""No client can open a breaker: each upstream's breaker, tried with what a client chooses.

A breaker that a client's input can open is a way for one anonymous client
to take a service away from every client (issue #16). Each test sends, more
times than the breaker tolerates failures, something a client picks: a link
whose stored target no HTTP library would parse, odd paths, queries, bodies
and headers to each upstream. The breakers must stay closed, and another
client must still be served. The counterpart, that a real upstream failure
does open them, is tests/test_resilience.py's.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from tests.accounts import register
from tests.conftest import Infra, running_gateway
from tests.metrics import metric

FAIL_MAX = 2
# Stored targets that older rules let in or that rows may hold from before
# them (docs/links-urls.md): WHATWG refuses each, and HTTP clients choke on
# them when they parse a Location header.
HOSTILE_TARGETS = (
    "http://1.2.3.08/",
    "http://192.168.0.257/",
    "http://256.256.256.256",
    "https://xn--i-7iq.ws/",
    "https://xn--n3h.net/",
    "http://a<b/",
    "http://ho%00st/",
    "http://[::1/",
    "http:///nohost",
)


@pytest.fixture(scope="module")
def edge(infra: Infra, link_url: str, user_url: str, analytics_url: str) -> Iterator[str]:
    """A gateway of its own whose breakers open after ``FAIL_MAX`` failures."""
    with running_gateway(
        infra,
        link_url,
        user_service_url=user_url,
        analytics_service_url=analytics_url,
        breaker_fail_max=str(FAIL_MAX),
        breaker_reset_seconds="60",
    ) as url:
        yield url


def _store_target(infra: Infra, code: str, target: str) -> None:
    """Write ``target`` into the link's row, as a row written before today's rules would hold it."""

    async def write() -> None:
        url = f"postgresql://link:link@127.0.0.1:{infra.ports.postgres}/link"
        connection = await asyncpg.connect(url)
        try:
            await connection.execute("UPDATE links SET url = $1 WHERE code = $2", target, code)
        finally:
            await connection.close()

    asyncio.run(write())


def _assert_closed(edge: str) -> None:
    for upstream in ("link", "user", "analytics"):
        state = metric(edge, "circuit_breaker_state", breaker=upstream)
        assert state == 0, f"the {upstream} breaker is open after client input"


def _others_still_served(edge: str) -> None:
    with httpx.Client(base_url=edge, timeout=10) as http:
        created = http.post("/api/v1/links", json={"url": "https://example.com/bystander"})
        assert created.status_code == 201, created.text
        code = created.json()["code"]
        assert http.get(f"/{code}").status_code == 302
        # Analytics may not know the link yet (404): answered, not refused.
        assert http.get(f"/api/v1/links/{code}/stats").status_code in (200, 404)
        assert (
            http.post("/api/v1/auth/login", json={"email": "a@b.c", "password": "x"}).status_code
            == 401
        )


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_a_stored_target_cannot_open_the_link_breaker(infra: Infra, edge: str, target: str) -> None:
    with httpx.Client(base_url=edge, timeout=10) as http:
        created = http.post("/api/v1/links", json={"url": "https://example.com/to-be-replaced"})
        assert created.status_code == 201, created.text
        code = created.json()["code"]
    _store_target(infra, code, target)
    for _ in range(FAIL_MAX * 3):
        # Read raw: an HTTP client parses a Location too (which is the point).
        answer = _raw(
            edge, b"GET /%s HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n" % code.encode()
        )
        head = answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        assert head[0].startswith(b"HTTP/1.1 302"), answer[:300]
        # Forwarded as the link service answered it, bytes as they are.
        assert b"location: " + target.encode() in head, head
    _assert_closed(edge)
    _others_still_served(edge)


def _raw(edge: str, request: bytes, *, leave: bool = False) -> bytes:
    """Send bytes a client chose, as they are; what came back (``leave``: hang up at once)."""
    host, port = edge.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        if leave:
            return b""
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_odd_requests_cannot_open_any_breaker(edge: str) -> None:
    with httpx.Client(base_url=edge, timeout=10) as http:
        token = register(http).access_token
    auth = f"authorization: Bearer {token}\r\n".encode()
    paths = (
        b"/api/v1/links/%00/stats?from=%ff&to=0.5",
        b"/api/v1/links/x/stats?granularity=\xff",
        b"/api/v1/stats/%2e%2e/%2e%2e/metrics",
        b"/api/v1/users/me/%C0%AF",
        b"/api/v1/api-keys/..%2f..%2freadyz",
        b"/api/v1/links?limit=-1&cursor=%ZZ",
        b"/api/v1/auth/login?" + b"a=1&" * 500,
        b"/%ZZ",
    )
    for _ in range(FAIL_MAX * 2):
        for path in paths:
            for method in (b"GET", b"POST", b"DELETE", b"PATCH"):
                body = b'{"url": "http://\xff\xfe", "email": [1], "password": {}}'
                head = b"%s %s HTTP/1.1\r\nhost: x\r\n%s" % (method, path, auth)
                head += b"content-type: application/json\r\nx-forwarded-for: ::zz\r\n"
                head += b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
                answer = _raw(edge, head + body)
                assert not answer.startswith(b"HTTP/1.1 5"), (method, path, answer[:300])
            # A client that sends half a body and leaves.
            head = b"POST /api/v1/links HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"
            _raw(edge, head, leave=True)
    _assert_closed(edge)
    _others_still_served(edge)
