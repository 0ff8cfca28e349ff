"""The redirect read model (ADR 0022): published by the link service with its
cache, read by the gateway, answered exactly as the link service would."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from infra.devstack.processes import free_port
from services.chassis.breaker import Breaker
from services.chassis.redirects import Redirect, read_model_key
from services.link.cache import CachedLink, LinkCache, Ticket
from tests.conftest import Infra, running_gateway, running_link_service
from tests.kafka_reader import read_clicks
from tests.metrics import metric
from tests.test_redirect_cache import (
    BROWSER,
    change_target,
    create_owned,
    eventually,
    follow,
    two_replicas,
)


def shared(infra: Infra, **more: str) -> dict[str, str]:
    """The read model on, the gateway's memory off: every visit asks Redis first."""
    return {"redirect_read_model_url": infra.redis_url, "redirect_cache_seconds": "0", **more}


def shorten(gateway: str, url: str, **fields: object) -> str:
    response = httpx.post(f"{gateway}/api/v1/links", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


# --- the entry and its headers -------------------------------------------------


def test_headers_follow_the_link_s_life_and_kind() -> None:
    now = 1_000_000.0
    permanent = Redirect(301, "https://example.com/p", now + 100.4, 3600)
    assert permanent.headers(now) == [
        ("location", "https://example.com/p"),
        ("cache-control", "public, max-age=100"),  # never past the link's end
        ("x-redirect-stale-ttl", "100"),
    ]
    forever = Redirect(302, "https://example.com/t", None, None)
    assert forever.headers(now)[1:] == [
        ("cache-control", "private, no-store"),
        ("x-redirect-stale-ttl", "86400"),
    ]
    counted = Redirect(302, "https://example.com/c", None, None, replayable=False)
    assert counted.headers(now) == [
        ("location", "https://example.com/c"),
        ("cache-control", "private, no-store"),
    ]
    assert counted.published_for(3600, now) == 0
    assert forever.published_for(3600, now) == 3600
    assert permanent.published_for(3600, now) == 100
    assert Redirect(302, "https://e.example", now + 0.5, None).published_for(3600, now) == 0


@given(
    st.sampled_from([301, 302, 307, 308]),
    st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    st.none() | st.floats(allow_nan=False, allow_infinity=False),
    st.none() | st.integers(min_value=0, max_value=2**40),
)
def test_an_entry_reads_back_as_written(
    status: int, url: str, expires_at: float | None, max_age: int | None
) -> None:
    redirect = Redirect(status, url, expires_at, max_age)
    assert Redirect.decode(redirect.encode()) == redirect


@given(st.binary() | st.text().map(str.encode))
def test_anything_else_is_refused_as_a_value_error(raw: bytes) -> None:
    try:
        redirect = Redirect.decode(raw)
    except ValueError:
        return
    assert redirect.status in {301, 302, 307, 308}
    assert Redirect.decode(redirect.encode()) == redirect


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"[]",
        b'[302, "u", null]',
        b'[200, "u", null, null]',
        b'[[302], "u", 1, 1]',
        b"[302, 7, null, null]",
        b'[302, "u", "soon", null]',
        b'[302, "u", null, -1]',
    ],
)
def test_malformed_entries_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not a read model entry"):
        Redirect.decode(raw)


# --- published with the cache, deleted with it ----------------------------------


@pytest.fixture
async def cache(infra: Infra) -> AsyncIterator[LinkCache]:
    redis = Redis.from_url(infra.redis_url)
    breaker = Breaker("read-model-test", fail_max=3, reset_timeout=5)
    yield LinkCache(redis, breaker, ttl_seconds=600, negative_ttl_seconds=60, permanent_max_age=90)
    await redis.aclose()


async def test_a_fill_publishes_and_a_change_deletes(cache: LinkCache) -> None:
    code = f"rm{time.monotonic_ns() % 10**9}"
    link = CachedLink("https://example.com/filled", 308, time.time() + 120)
    await cache.fill(code, link, Ticket(None))
    raw = await cache.redis.get(read_model_key(code))
    assert isinstance(raw, bytes)
    assert Redirect.decode(raw) == Redirect(308, link.url, link.expires_at, 90)
    assert 0 < await cache.redis.ttl(read_model_key(code)) <= 120  # not the cache's 600 s
    await cache.invalidate(code)
    assert await cache.redis.get(read_model_key(code)) is None
    # A load that began before that change is fenced: it publishes nothing either.
    await cache.fill(code, link, Ticket(None))
    assert await cache.redis.get(read_model_key(code)) is None


async def test_links_a_gateway_may_not_answer_are_never_published(cache: LinkCache) -> None:
    base = f"np{time.monotonic_ns() % 10**9}"
    limited = CachedLink("https://example.com/l", 302, None, limited=True)
    exhausted = CachedLink("https://example.com/x", 302, None, limited=True, exhausted=True)
    ending = CachedLink("https://example.com/e", 302, time.time() + 0.5)
    for n, link in enumerate((limited, exhausted, ending)):
        code = f"{base}{n}"
        await cache.redis.set(read_model_key(code), b"left over")
        await cache.fill(code, link, Ticket(None))
        assert await cache.redis.get(read_model_key(code)) is None, link


# --- through the gateway ---------------------------------------------------------


def test_a_published_redirect_is_answered_without_the_link_service(infra: Infra) -> None:
    port = free_port()
    settings = shared(infra)
    with running_gateway(infra, f"http://127.0.0.1:{port}", settings=settings) as gateway:
        with running_link_service(infra, port=port):
            code = shorten(gateway, "https://example.com/published", redirect_type=301)
            first = follow(gateway, code)  # a miss: the link service loads and publishes
            assert first.status_code == 301
            assert "x-gateway-cache" not in first.headers
        for _ in range(3):
            answer = follow(gateway, code)
            assert answer.status_code == 301
            assert answer.headers["location"] == "https://example.com/published"
            assert answer.headers["cache-control"] == first.headers["cache-control"]
            assert answer.headers["x-gateway-cache"] == "shared"
            assert "x-redirect-stale-ttl" not in answer.headers
            assert int(answer.headers["ratelimit-limit"]) > 0
        assert metric(gateway, "gateway_read_model_lookups_total", result="hit") == 3
        clicks = read_clicks(infra.bootstrap, code, expected=4)
        assert len({c["event_id"] for c in clicks}) == 4
        assert len({c["ip_hash"] for c in clicks}) == 1
        assert all(c["user_agent"] == BROWSER["user-agent"] for c in clicks)


def test_a_change_is_seen_by_every_gateway_at_once(
    infra: Infra, link_url: str, user_url: str
) -> None:
    # Two replicas, the read model on and each one's memory on too: a change
    # through one is seen by the other from its next visit or within the
    # LinkChanged event's delay, never served old from the read model after it.
    settings = shared(infra, redirect_cache_seconds="30")
    with two_replicas(infra, link_url, user_url, settings) as (one, other, http, auth):
        code = create_owned(http, auth, "https://example.com/before")
        follow(other, code)  # published
        assert follow(one, code).headers["x-gateway-cache"] == "shared"
        time.sleep(0.5)  # the group-less listener reads from the latest offset
        change_target(http, auth, code, "https://example.com/after")
        eventually(
            lambda: follow(one, code).headers["location"] == "https://example.com/after",
            "the change never reached the other replica",
        )
        for _ in range(5):  # and it stays changed
            assert follow(one, code).headers["location"] == "https://example.com/after"
        assert http.delete(f"/api/v1/links/{code}", headers=auth).status_code == 204
        eventually(
            lambda: follow(one, code).status_code == 404,
            "the deletion never reached the other replica",
        )


def test_visit_limited_and_expired_links_always_reach_the_link_service(
    infra: Infra, link_url: str
) -> None:
    with running_gateway(infra, link_url, settings=shared(infra)) as gateway:
        limited = shorten(gateway, "https://example.com/twice", max_visits=2)
        visits = [follow(gateway, limited) for _ in range(3)]
        assert [v.status_code for v in visits] == [302, 302, 410]
        assert all("x-gateway-cache" not in v.headers for v in visits)
        soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        brief = shorten(gateway, "https://example.com/brief", expires_at=soon)
        follow(gateway, brief)
        assert follow(gateway, brief).headers.get("x-gateway-cache") == "shared"
        time.sleep(2.2)
        assert follow(gateway, brief).status_code in (404, 410)


def test_a_read_model_that_cannot_answer_costs_the_hop_never_the_redirect(
    infra: Infra, link_url: str
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    settings = {**shared(infra), "redirect_read_model_url": nowhere}
    with running_gateway(infra, link_url, settings=settings) as gateway:
        code = shorten(gateway, "https://example.com/anyway")
        answers = [follow(gateway, code) for _ in range(6)]
        assert [a.status_code for a in answers] == [302] * 6
        assert all("x-gateway-cache" not in a.headers for a in answers)
        # The first failures count as errors; then the breaker holds Redis off.
        assert metric(gateway, "gateway_read_model_lookups_total", result="error") == 3
        assert metric(gateway, "gateway_read_model_lookups_total", result="bypassed") == 3
