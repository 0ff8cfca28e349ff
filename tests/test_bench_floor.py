"""The bare two-hop floor `make bench` compares the proxied path with
(loadtests/floor.py): each redirect really crosses both hops and Redis."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import redis
from starlette.types import Message, Send

from infra.devstack.state import StateDir
from loadtests.floor import FLOOR_CODE, FLOOR_TARGET, ProxyFloor
from loadtests.sideprocs import TWO_HOP_REDIS_DB, two_hop_floor
from tests.conftest import Infra


def test_the_two_hop_floor_answers_from_redis_through_both_hops(infra: Infra) -> None:
    state = StateDir(infra.workdir / "two-hop-floor")
    with (
        two_hop_floor(infra.ports, state) as (url, pids),
        httpx.Client(base_url=url, trust_env=False) as http,
        redis.Redis(port=infra.ports.redis, db=TWO_HOP_REDIS_DB) as store,
    ):
        assert set(pids) == {"2-hop front", "2-hop back"}
        answer = http.get(f"/{FLOOR_CODE}")
        assert (answer.status_code, answer.headers["location"]) == (302, FLOOR_TARGET)
        assert http.get("/never-made").status_code == 404
        # Read from Redis on every redirect, not remembered by either hop.
        store.set("moved", "https://example.org/elsewhere")
        assert http.get("/moved").headers["location"] == "https://example.org/elsewhere"
        store.delete(FLOOR_CODE)
        assert http.get(f"/{FLOOR_CODE}").status_code == 404


async def test_the_front_hop_reads_each_answer_and_keeps_its_connection() -> None:
    """One connection from front to back carries redirect after redirect: a
    front that reconnected every few requests would measure TCP set-up, not
    a hop. aiohttp closes a connection whose answer is released unread,
    which happened whenever the back's last chunk came after its head; here
    it always does."""
    accepted = 0

    async def back(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        with contextlib.suppress(asyncio.IncompleteReadError):  # the front hung up
            await _answer_slowly(reader, writer)
        writer.close()

    server = await asyncio.start_server(back, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    front = ProxyFloor(f"http://127.0.0.1:{port}")
    try:
        sent: list[Message] = []
        for _ in range(3):
            await front({"type": "http", "path": f"/{FLOOR_CODE}"}, _no_body, _into(sent))
        assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [302] * 3
        assert accepted == 1
    finally:
        if front.session is not None:
            await front.session.close()
        server.close()


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _into(sent: list[Message]) -> Send:
    async def send(message: Message) -> None:
        sent.append(message)

    return send


async def _answer_slowly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Each request on the connection: a chunked 302 whose last chunk comes 20 ms after its head."""
    while await reader.readuntil(b"\r\n\r\n"):
        head = "HTTP/1.1 302 Found\r\nlocation: %s\r\ntransfer-encoding: chunked\r\n\r\n"
        writer.write((head % FLOOR_TARGET).encode())
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
