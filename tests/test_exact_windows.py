"""Exact rate-limit checks that arrive together share a round trip, and stay exact.

Against the session's Redis: concurrent checks beyond the limit admit
exactly the limit, in fewer calls than checks; a lone check goes alone; a
script Redis has lost (a restart, SCRIPT FLUSH) is loaded again.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.windows import ExactWindows, position
from tests.test_ratelimit import shared_redis

# A Redis database of its own per test, as in tests/test_ratelimit.py.
redis = shared_redis


def calls() -> tuple[float, float]:
    """(round trips, checks) so far, from the histogram ExactWindows' coalescer keeps."""
    labels = {"call": "ratelimit_checks"}
    count = REGISTRY.get_sample_value("coalesced_calls_count", labels) or 0.0
    total = REGISTRY.get_sample_value("coalesced_calls_sum", labels) or 0.0
    return count, total


async def test_concurrent_checks_admit_exactly_the_limit_in_fewer_calls(redis: Redis) -> None:
    windows = ExactWindows(redis)
    at = position(time.time(), 3600)
    before = calls()
    results = await asyncio.gather(*(windows.hit("create:k1", 50, at) for _ in range(120)))
    trips, checks = (after - first for after, first in zip(calls(), before, strict=True))
    assert sum(allowed for allowed, _ in results) == 50
    assert sorted(used for allowed, used in results if allowed) == list(range(1, 51))
    assert checks == 120
    assert trips < 10  # 120 checks in one loop turn: one call, give or take


async def test_a_lone_check_goes_at_once_and_alone(redis: Redis) -> None:
    windows = ExactWindows(redis)
    at = position(time.time(), 3600)
    before = calls()
    assert await asyncio.wait_for(windows.hit("create:k2", 5, at), timeout=1) == (True, 1)
    assert await windows.hit("create:k2", 5, at) == (True, 2)
    assert tuple(a - b for a, b in zip(calls(), before, strict=True)) == (2, 2)


async def test_a_lost_script_is_loaded_again_for_a_batch(redis: Redis) -> None:
    windows = ExactWindows(redis)
    at = position(time.time(), 3600)
    await windows.hit("create:k3", 100, at)
    await redis.script_flush()
    results = await asyncio.gather(*(windows.hit("create:k3", 100, at) for _ in range(10)))
    assert sorted(used for _, used in results) == list(range(2, 12))


async def test_redis_away_fails_every_check_of_the_batch() -> None:
    away = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    windows = ExactWindows(away)
    at = position(time.time(), 3600)
    results = await asyncio.gather(
        *(windows.hit("create:k4", 5, at) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(result, RedisError) for result in results)
    await away.aclose()
