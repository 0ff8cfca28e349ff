"""The bare two-hop floor `make bench` compares the proxied path with
(loadtests/floor.py): each redirect really crosses both hops and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import redis

from infra.devstack.state import StateDir
from loadtests.floor import FLOOR_CODE, FLOOR_TARGET
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


def test_the_front_hop_keeps_its_connections_to_the_back(infra: Infra) -> None:
    """Connections from front to back carry redirect after redirect: a hop that
    opened a new one every few requests would measure TCP set-up, not the hop.
    Under concurrent requests an unread answer closed its connection (about
    one in four requests did, before the front read the bodies)."""
    state = StateDir(infra.workdir / "two-hop-floor-reuse")
    with two_hop_floor(infra.ports, state) as (url, pids):
        front, port = pids["2-hop front"], urlsplit(url).port
        asyncio.run(_burst(url))
        pooled = _outgoing(front, port)
        assert 1 <= len(pooled) <= _CONCURRENCY
        asyncio.run(_burst(url))
        assert _outgoing(front, port) <= pooled


_CONCURRENCY = 8


async def _burst(url: str) -> None:
    limits = httpx.Limits(max_connections=_CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, limits=limits, trust_env=False) as http:
        answers = await asyncio.gather(*(http.get(f"/{FLOOR_CODE}") for _ in range(200)))
    assert {a.status_code for a in answers} == {302}


def _outgoing(pid: int, own_port: int | None) -> set[int]:
    """The socket inodes of ``pid``'s established TCP connections not to its own port."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed since it was listed
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], int(fields[9])
        if inode in inodes and state == "01" and local_port != own_port:  # 01: ESTABLISHED
            found.add(inode)
    return found
