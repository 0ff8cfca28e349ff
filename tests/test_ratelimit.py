"""Rate limits at the gateway: headers, 429s, keys, spoofing, and Redis outages."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import httpx
import pytest
import redis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.windows import BatchedWindows, position
from tests.accounts import register
from tests.conftest import Infra, running_gateway

# A Redis database of its own per gateway below, so counters never mix.
_databases = itertools.count(2)


@contextmanager
def limited_gateway(
    infra: Infra, link_url: str, user_url: str, **settings: str
) -> Iterator[httpx.Client]:
    db = next(_databases)
    redis_url = settings.pop("redis_url", f"redis://127.0.0.1:{infra.ports.redis}/{db}")
    with (
        running_gateway(
            infra, link_url, user_service_url=user_url, redis_url=redis_url, settings=settings
        ) as gateway,
        httpx.Client(base_url=gateway, timeout=10) as http,
    ):
        _clear_of_a_window_edge()
        yield http


def _clear_of_a_window_edge(margin: float = 10.0) -> None:
    """Start a test's requests well inside a minute window.

    Windows are wall-clock minutes, and the sliding counter weighs the last
    one by how much of it still overlaps (gateway/windows.py): two requests
    just before a minute ends and a third just after count as 1.99, which
    rounds down to 1, and a test expecting its third request refused saw it
    pass (CI, 2026-12-06).
    """
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.05)


def test_responses_carry_ratelimit_headers(client: httpx.Client) -> None:
    code = client.post("/api/v1/links", json={"url": "https://example.com/h"}).json()["code"]
    response = client.get(f"/{code}")
    assert int(response.headers["ratelimit-limit"]) == 100000
    assert 0 <= int(response.headers["ratelimit-remaining"]) < 100000
    assert 0 <= int(response.headers["ratelimit-reset"]) <= 60


def test_login_brute_force_gets_429_with_retry_after(
    infra: Infra, link_url: str, user_url: str
) -> None:
    with limited_gateway(infra, link_url, user_url, ratelimit_auth="5/minute") as http:
        statuses = []
        for _ in range(8):
            response = http.post(
                "/api/v1/auth/login", json={"email": "victim@example.com", "password": "guess1234"}
            )
            statuses.append(response.status_code)
        assert statuses == [401] * 5 + [429] * 3
        assert response.json()["code"] == "rate_limited"
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["ratelimit-remaining"] == "0"


def test_users_are_limited_separately_and_anonymous_callers_more_strictly(
    infra: Infra, link_url: str, user_url: str
) -> None:
    with limited_gateway(
        infra,
        link_url,
        user_url,
        ratelimit_create="4/minute",
        ratelimit_create_anonymous="2/minute",
    ) as http:
        alice, bob = register(http), register(http)

        def create(headers: dict[str, str]) -> int:
            body = {"url": "https://example.com/r"}
            return http.post("/api/v1/links", json=body, headers=headers).status_code

        assert [create({}) for _ in range(3)] == [201, 201, 429]
        assert [create(alice.bearer) for _ in range(5)] == [201] * 4 + [429]
        assert create(bob.bearer) == 201


def test_a_forged_x_forwarded_for_does_not_change_the_client(
    infra: Infra, link_url: str, user_url: str
) -> None:
    with limited_gateway(infra, link_url, user_url, ratelimit_create_anonymous="2/minute") as http:
        statuses = [
            http.post(
                "/api/v1/links",
                json={"url": "https://example.com/x"},
                headers={"x-forwarded-for": f"203.0.113.{i}"},
            ).status_code
            for i in range(3)
        ]
        assert statuses == [201, 201, 429]


def test_a_trusted_proxy_s_x_forwarded_for_is_believed(
    infra: Infra, link_url: str, user_url: str
) -> None:
    with limited_gateway(
        infra,
        link_url,
        user_url,
        ratelimit_create_anonymous="1/minute",
        trusted_proxies="127.0.0.1/32",
    ) as http:

        def create(client_ip: str) -> int:
            return http.post(
                "/api/v1/links",
                json={"url": "https://example.com/p"},
                headers={"x-forwarded-for": f"198.51.100.7, {client_ip}"},
            ).status_code

        # The rightmost untrusted address is the client; what it claims to its left is not.
        assert [create("203.0.113.1"), create("203.0.113.1"), create("203.0.113.2")] == [
            201,
            429,
            201,
        ]


def test_with_redis_down_redirects_flow_and_login_is_closed(
    infra: Infra, link_url: str, user_url: str
) -> None:
    with redis.Redis.from_url(f"redis://127.0.0.1:{infra.ports.redis}/0") as cache:
        cache.ping()
    with limited_gateway(infra, link_url, user_url, redis_url="redis://127.0.0.1:1/0") as http:
        code = http.post("/api/v1/links", json={"url": "https://example.com/d"}).json()["code"]
        redirect = http.get(f"/{code}")
        assert redirect.status_code == 302
        # Still limited, by this replica's own count (gateway/windows.py).
        assert int(redirect.headers["ratelimit-remaining"]) < int(
            redirect.headers["ratelimit-limit"]
        )
        login = http.post(
            "/api/v1/auth/login", json={"email": "a@example.com", "password": "x" * 12}
        )
        assert login.status_code == 503
        assert login.json()["code"] == "rate_limiter_unavailable"
        assert "retry-after" in login.headers
        assert http.get("/readyz").json()["checks"]["redis"] == "down"


def test_redirects_are_limited_without_waiting_for_redis(
    infra: Infra, link_url: str, user_url: str
) -> None:
    with limited_gateway(infra, link_url, user_url, ratelimit_redirect="5/hour") as http:
        code = http.post("/api/v1/links", json={"url": "https://example.com/b"}).json()["code"]
        statuses = [http.get(f"/{code}").status_code for _ in range(7)]
        assert statuses == [302] * 5 + [429] * 2


class WallClock:
    """A settable wall clock, in the middle of an hour-long window."""

    def __init__(self) -> None:
        self.now = 3600.0 * 500_000 + 1800.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def shared_redis(infra: Infra) -> AsyncIterator[Redis]:
    client = Redis.from_url(f"redis://127.0.0.1:{infra.ports.redis}/{next(_databases)}")
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


async def test_one_replica_counting_in_batches_admits_exactly_the_limit(
    shared_redis: Redis,
) -> None:
    clock = WallClock()
    windows = BatchedWindows(shared_redis, clock)
    at = position(clock(), 3600)
    allowed = 0
    for hit in range(150):
        allowed += windows.hit("redirect:198.51.100.1", 100, at)[0]
        if hit % 7 == 0:
            await windows.sync()
    await windows.sync()
    assert allowed == 100
    assert await stored(shared_redis, "redirect:198.51.100.1", at.index) == 100


async def test_replicas_counting_in_batches_overshoot_by_at_most_one_interval(
    shared_redis: Redis,
) -> None:
    """The stated tolerance (gateway/windows.py): with R replicas, at most
    (R - 1) x the hits one replica admits between two synchronisations."""
    clock = WallClock()
    replicas = [BatchedWindows(shared_redis, clock) for _ in range(3)]
    at = position(clock(), 3600)
    per_interval = 4  # hits each replica takes between two synchronisations
    allowed = 0
    for _ in range(40):
        for replica in replicas:
            for _ in range(per_interval):
                allowed += replica.hit("redirect:203.0.113.9", 100, at)[0]
        await asyncio.gather(*(replica.sync() for replica in replicas))
    tolerance = (len(replicas) - 1) * per_interval
    assert 100 <= allowed <= 100 + tolerance
    # Redis holds every admitted hit: the global count is the truth for all.
    assert await stored(shared_redis, "redirect:203.0.113.9", at.index) == allowed


async def test_the_previous_window_still_counts_for_its_overlap(shared_redis: Redis) -> None:
    clock = WallClock()
    windows = BatchedWindows(shared_redis, clock)
    for _ in range(100):
        windows.hit("redirect:192.0.2.4", 100, position(clock(), 3600))
    await windows.sync()
    clock.now += 1800 + 900  # a quarter into the next window: three quarters of the 100 still count
    at = position(clock(), 3600)
    admitted = sum(windows.hit("redirect:192.0.2.4", 100, at)[0] for _ in range(100))
    assert admitted == 25


async def test_hits_counted_while_redis_is_away_still_count_here() -> None:
    clock = WallClock()
    at = position(clock(), 3600)
    away = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    windows = BatchedWindows(away, clock)
    assert [windows.hit("redirect:192.0.2.8", 5, at)[0] for _ in range(3)] == [True] * 3
    with pytest.raises(RedisError):
        await windows.sync()
    # Kept to be sent later, and counted meanwhile: two more, not five.
    assert [windows.hit("redirect:192.0.2.8", 5, at)[0] for _ in range(3)] == [True, True, False]
    await away.aclose()


async def stored(client: Redis, name: str, index: int) -> int:
    """The count Redis holds for ``name`` in window ``index``."""
    value = await client.get(f"rl:{{{name}}}:{index}")
    return int(value or 0)
