"""What the gateway's proxy sends upstream and relays back, against an upstream that shows it.

The proxy forwards on its own aiohttp session (gateway/proxy.py). An echo
server on 127.0.0.1 answers with the headers it received, sets a cookie and
sends a gzip body, so each test sees what a service behind the gateway
sees: nothing added by the client library, no cookie carried from one
caller to the next, header bytes as the client sent them, a body relayed
as it came.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from starlette.types import Message

from gateway.clients import create_proxy_session
from gateway.config import GatewaySettings
from gateway.fallback import Fallback
from gateway.proxy import Upstream, UpstreamProxy
from gateway.resilience import build_guard
from gateway.stale import StaleClicks, StaleRedirects
from infra.devstack.managed import free_port
from services.chassis.identity import GatewaySigner, Identity
from services.chassis.kafka import EventPublisher

BODY = gzip.compress(b"compressed, and relayed so")
SETTINGS = GatewaySettings(internal_auth_key="k" * 32)


async def _echo(request: web.Request) -> web.Response:
    # Latin-1: each byte as one character, so the test sees the bytes that arrived.
    seen = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers]
    response = web.Response(
        body=BODY, headers={"content-encoding": "gzip", "x-seen": json.dumps(seen)}
    )
    response.set_cookie("session", "of-the-first-caller")
    return response


@pytest.fixture
async def upstream_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _echo)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def proxy() -> AsyncIterator[UpstreamProxy]:
    session = create_proxy_session(SETTINGS)
    publisher = EventPublisher(SETTINGS, "clicks")  # never started: no click is made here
    fallback = Fallback(StaleRedirects(10, 60), StaleClicks(publisher, b"k" * 32))
    yield UpstreamProxy(session, GatewaySigner(b"s" * 32), 65536, fallback)
    await session.close()


async def _forward(
    proxy: UpstreamProxy, url: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[bytes, bytes], bytes]:
    upstream = Upstream("user", url, build_guard("user", SETTINGS))
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/me",
        "raw_path": b"/api/v1/me",
        "query_string": b"",
        "headers": headers,
        "client": ("203.0.113.9", 5000),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    identity = Identity(None, "anonymous", "203.0.113.9")
    status = await proxy.forward(upstream, scope, receive, send, identity, [])
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, dict(start["headers"]), body


def _seen(headers: dict[bytes, bytes]) -> dict[str, str]:
    return {k.lower(): v for k, v in json.loads(headers[b"x-seen"])}


async def test_nothing_is_added_and_no_cookie_is_kept(
    proxy: UpstreamProxy, upstream_url: str
) -> None:
    status, headers, body = await _forward(proxy, upstream_url, [(b"host", b"edge")])
    assert status == 200
    assert headers[b"set-cookie"].startswith(b"session=")  # relayed to its caller
    # The next caller's request carries no cookie of the first one's.
    _, headers, _ = await _forward(proxy, upstream_url, [(b"host", b"edge")])
    seen = _seen(headers)
    assert "cookie" not in seen
    for added in ("user-agent", "accept", "accept-encoding", "content-type"):
        assert added not in seen, added
    assert body == BODY  # not decompressed on the way
    assert headers[b"content-encoding"] == b"gzip"


async def test_header_bytes_go_upstream_as_the_client_sent_them(
    proxy: UpstreamProxy, upstream_url: str
) -> None:
    value = "Zoë 🙂 résumé".encode()
    _, headers, _ = await _forward(
        proxy, upstream_url, [(b"user-agent", value), (b"x-many", b"1"), (b"x-many", b"2")]
    )
    raw = json.loads(headers[b"x-seen"])
    assert _seen(headers)["user-agent"].encode("latin-1") == value
    assert [v for k, v in raw if k.lower() == "x-many"] == ["1", "2"]
    assert _seen(headers)["x-forwarded-for"] == "203.0.113.9"
