"""The bare two-hop floor `make bench` compares the proxied path with
(loadtests/floor.py): each redirect really crosses both hops and Redis."""

from __future__ import annotations

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
