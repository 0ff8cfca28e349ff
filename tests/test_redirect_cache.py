"""The gateway's redirect cache (gateway/stale.py, fresh entries): served
without the link hop, dropped at once on a change, never a lost click."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx

from gateway.stale import StaleRedirects
from infra.devstack.processes import free_port
from tests.accounts import register
from tests.conftest import Infra, running_gateway, running_link_service
from tests.kafka_reader import read_clicks
from tests.metrics import metric

BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}
# Long enough that only an invalidation can explain a new target in time.
CACHED = {"redirect_cache_seconds": "30"}


def shorten(gateway: str, url: str, **fields: str) -> str:
    response = httpx.post(f"{gateway}/api/v1/links", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


def follow(gateway: str, code: str) -> httpx.Response:
    return httpx.get(f"{gateway}/{code}", headers=BROWSER)


def create_owned(http: httpx.Client, auth: dict[str, str], url: str) -> str:
    response = http.post("/api/v1/links", json={"url": url}, headers=auth)
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


def change_target(http: httpx.Client, auth: dict[str, str], code: str, url: str) -> None:
    patched = http.patch(f"/api/v1/links/{code}", json={"url": url}, headers=auth)
    assert patched.status_code == 200, patched.text


@contextmanager
def two_replicas(
    infra: Infra, link_url: str, user_url: str, settings: dict[str, str]
) -> Iterator[tuple[str, str, httpx.Client, dict[str, str]]]:
    """Two gateway replicas; a client of the second, signed in: (one, other, it, its auth)."""
    with (
        running_gateway(infra, link_url, user_service_url=user_url, settings=settings) as one,
        running_gateway(infra, link_url, user_service_url=user_url, settings=settings) as other,
        httpx.Client(base_url=other) as http,
    ):
        yield one, other, http, register(http).bearer


def eventually(check: Callable[[], bool], failure: str, seconds: float = 10) -> None:
    """Until ``check`` holds, looked at every 0.1 s; ``failure`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, failure
        time.sleep(0.1)


def test_a_hot_redirect_is_served_without_the_link_service(infra: Infra) -> None:
    port = free_port()
    with running_gateway(infra, f"http://127.0.0.1:{port}", settings=CACHED) as gateway:
        with running_link_service(infra, port=port):
            code = shorten(gateway, "https://example.com/hot")
            first = follow(gateway, code)
            assert first.status_code == 302
            assert "x-gateway-cache" not in first.headers
        # The link service is gone: a fresh entry is still a plain hit, with
        # the link service's own headers and its age.
        for _ in range(3):
            hit = follow(gateway, code)
            assert hit.status_code == 302
            assert hit.headers["location"] == "https://example.com/hot"
            assert hit.headers["x-gateway-cache"] == "hit"
            assert hit.headers["cache-control"] == first.headers["cache-control"]
            assert int(hit.headers["age"]) >= 0
            assert "x-redirect-stale-ttl" not in hit.headers
            assert int(hit.headers["ratelimit-limit"]) > 0
        assert metric(gateway, "gateway_redirect_cache_hits_total") == 3
        # Every redirect is one click: one from the link service, three from here.
        clicks = read_clicks(infra.bootstrap, code, expected=4)
        assert len(clicks) == 4
        assert len({c["event_id"] for c in clicks}) == 4
        assert len({c["ip_hash"] for c in clicks}) == 1  # the same key as the link service
        assert all(c["user_agent"] == BROWSER["user-agent"] for c in clicks)


def test_a_change_through_this_gateway_is_seen_at_once(
    infra: Infra, link_url: str, user_url: str
) -> None:
    with (
        running_gateway(infra, link_url, user_service_url=user_url, settings=CACHED) as gateway,
        httpx.Client(base_url=gateway) as http,
    ):
        auth = register(http).bearer
        code = http.post(
            "/api/v1/links", json={"url": "https://example.com/old"}, headers=auth
        ).json()["code"]
        follow(gateway, code)
        assert follow(gateway, code).headers["x-gateway-cache"] == "hit"
        patched = http.patch(
            f"/api/v1/links/{code}", json={"url": "https://example.com/new"}, headers=auth
        )
        assert patched.status_code == 200, patched.text
        after = follow(gateway, code)
        assert after.headers["location"] == "https://example.com/new"
        assert "x-gateway-cache" not in after.headers
        assert http.delete(f"/api/v1/links/{code}", headers=auth).status_code == 204
        assert follow(gateway, code).status_code == 404


def test_a_change_through_another_replica_arrives_on_the_links_topic(
    infra: Infra, link_url: str, user_url: str
) -> None:
    with two_replicas(infra, link_url, user_url, CACHED) as (one, _, http, auth):
        code = create_owned(http, auth, "https://example.com/before")
        follow(one, code)
        assert follow(one, code).headers["x-gateway-cache"] == "hit"
        time.sleep(0.5)  # the group-less listener reads from the latest offset
        change_target(http, auth, code, "https://example.com/after")
        eventually(  # within a third of the freshness bound
            lambda: follow(one, code).headers["location"] == "https://example.com/after",
            "the change never reached the other replica",
        )
        assert metric(one, "gateway_redirect_cache_invalidations_total") >= 1


def test_a_link_is_never_fresh_past_its_expiry(infra: Infra, link_url: str) -> None:
    with running_gateway(infra, link_url, settings=CACHED) as gateway:
        soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        code = shorten(gateway, "https://example.com/brief", expires_at=soon)
        follow(gateway, code)
        time.sleep(2.2)
        assert follow(gateway, code).status_code in (404, 410)  # whichever "gone" it says


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_older_than_a_change_is_not_kept() -> None:
    cache = StaleRedirects(10, 300, FakeClock(), freshness_seconds=5)
    sent_at = cache.generation  # a redirect leaves for the link service...
    cache.invalidate("abc")  # ...the link changes meanwhile...
    cache.remember("abc", 302, b"https://old.example", b"3600", None, sent_at)
    assert cache.fresh("abc") is None  # ...and its old answer is not served
    assert cache.get("abc") is None
    cache.remember("abc", 302, b"https://new.example", b"3600", None, cache.generation)
    entry = cache.fresh("abc")
    assert entry is not None
    assert entry.location == b"https://new.example"


def test_freshness_ends_before_staleness_and_never_past_the_link_s_life() -> None:
    clock = FakeClock()
    cache = StaleRedirects(10, 300, clock, freshness_seconds=5)
    cache.remember("long", 302, b"https://a.example", b"3600")
    cache.remember("short", 302, b"https://b.example", b"2")
    clock.now += 2.5
    assert cache.fresh("long") is not None
    assert cache.fresh("short") is None  # its link ended at 2 s
    clock.now += 3
    assert cache.fresh("long") is None
    assert cache.get("long") is not None  # still replayable in an outage


def test_a_visit_limited_link_is_never_served_from_the_gateway(infra: Infra, link_url: str) -> None:
    with running_gateway(infra, link_url, settings=CACHED) as gateway:
        response = httpx.post(
            f"{gateway}/api/v1/links", json={"url": "https://example.com/twice", "max_visits": 2}
        )
        assert response.status_code == 201, response.text
        code = response.json()["code"]
        statuses = []
        for _ in range(3):
            visit = follow(gateway, code)
            assert "x-gateway-cache" not in visit.headers
            statuses.append(visit.status_code)
        assert statuses == [302, 302, 410]
