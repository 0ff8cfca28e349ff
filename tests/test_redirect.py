"""Following short links through the gateway: the hot path."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
import redis

from services.link.cache import LinkCache
from tests.conftest import Infra, running_gateway, running_link_service


def create(client: httpx.Client, url: str, **fields: object) -> str:
    response = client.post("/api/v1/links", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


@pytest.fixture
def cache(infra: Infra) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(infra.redis_url) as connection:
        yield connection


def sql(infra: Infra, query: str, *args: object) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(infra.link_database_url)
        try:
            await connection.execute(query, *args)
        finally:
            await connection.close()

    asyncio.run(run())


def test_a_short_link_redirects_to_its_target(client: httpx.Client) -> None:
    code = create(client, "https://example.com/target?x=1")
    response = client.get(f"/{code}")
    assert response.status_code == 302
    assert response.headers["location"] == "https://example.com/target?x=1"
    # A temporary redirect is never cached, so every visit is counted.
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("kind", "cache_control"),
    [
        (301, "public, max-age=3600"),
        (302, "private, no-store"),
        (307, "private, no-store"),
        (308, "public, max-age=3600"),
    ],
)
def test_each_redirect_type_is_served_with_its_caching(
    client: httpx.Client, kind: int, cache_control: str
) -> None:
    code = create(client, "https://example.com/kind", redirect_type=kind)
    response = client.get(f"/{code}")
    assert response.status_code == kind
    assert response.headers["cache-control"] == cache_control


def test_a_permanent_redirect_is_not_cached_past_its_expiry(client: httpx.Client) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=120)
    code = create(
        client, "https://example.com/p", redirect_type=301, expires_at=expires.isoformat()
    )
    max_age = int(client.get(f"/{code}").headers["cache-control"].split("max-age=")[1])
    assert 100 <= max_age <= 120


def test_an_unknown_code_is_404_with_a_problem_body(client: httpx.Client) -> None:
    response = client.get("/unknown" + uuid.uuid4().hex[:6])
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "link_not_found"


@pytest.mark.parametrize("path", ["/not.a.code", "/" + "x" * 65, "/%00", "/a%2Fb"])
def test_paths_that_cannot_be_codes_are_404_too(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_an_expired_link_is_410(client: httpx.Client, infra: Infra) -> None:
    code = create(client, "https://example.com/old")
    sql(infra, "UPDATE links SET expires_at = now() - interval '1 second' WHERE code = $1", code)
    response = client.get(f"/{code}")
    assert response.status_code == 410
    assert response.json()["code"] == "link_expired"
    # The metadata stays readable.
    assert client.get(f"/api/v1/links/{code}").status_code == 200


def test_a_cached_link_stops_redirecting_at_its_expiry(client: httpx.Client) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    code = create(client, "https://example.com/soon", expires_at=expires.isoformat())
    assert client.get(f"/{code}").status_code == 302  # now in the cache
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
    assert client.get(f"/{code}").status_code == 410


def test_redirects_are_served_from_the_cache(
    client: httpx.Client, infra: Infra, cache: redis.Redis
) -> None:
    code = create(client, "https://example.com/cached")
    assert client.get(f"/{code}").status_code == 302
    assert cache.exists(LinkCache.key(code))
    # Behind the cache's back: the cache, not Postgres, answers the next one.
    sql(infra, "UPDATE links SET url = 'https://example.com/changed' WHERE code = $1", code)
    assert client.get(f"/{code}").headers["location"] == "https://example.com/cached"
    cache.delete(LinkCache.key(code))
    assert client.get(f"/{code}").headers["location"] == "https://example.com/changed"


def test_unknown_codes_are_cached_and_a_new_alias_clears_the_entry(
    client: httpx.Client, cache: redis.Redis
) -> None:
    code = "scan-" + uuid.uuid4().hex[:8]
    assert client.get(f"/{code}").status_code == 404
    assert cache.get(LinkCache.key(code)) == b""  # the negative entry
    create(client, "https://example.com/now-exists", alias=code)
    assert client.get(f"/{code}").status_code == 302


def test_redirects_work_while_redis_is_unreachable(client: httpx.Client, infra: Infra) -> None:
    with (
        running_link_service(infra, redis_url="redis://127.0.0.1:1/0") as link,
        running_gateway(infra, link) as gateway,
        httpx.Client(base_url=gateway, timeout=10) as http,
    ):
        code = create(http, "https://example.com/no-cache")
        for _ in range(3):
            assert http.get(f"/{code}").headers["location"] == "https://example.com/no-cache"
        ready = httpx.get(f"{link}/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["redis"] == "down"
