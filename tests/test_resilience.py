"""Degradation through real processes: what a client sees when a dependency
goes away, and that the system comes back by itself."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime, timedelta

import httpx

from infra.devstack.postgres import start_postgres
from infra.devstack.processes import ensure_database, free_port
from tests.accounts import register
from tests.conftest import (
    FAST_HASHING,
    Infra,
    running_gateway,
    running_link_service,
    start_service,
)
from tests.kafka_reader import read_clicks
from tests.metrics import metric

BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}
FAST_BREAKER = {"breaker_fail_max": "2", "breaker_reset_seconds": "1"}


def shorten(gateway: str, url: str, **fields: str) -> str:
    response = httpx.post(f"{gateway}/api/v1/links", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


def retried(gateway: str, upstream: str) -> float:
    return metric(gateway, "gateway_upstream_retries_total", upstream=upstream, result="retried")


def wait_until(check: object, timeout: float = 15.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_link_outage_replays_recent_redirects_and_still_counts_them(infra: Infra) -> None:
    port = free_port()
    with running_gateway(infra, f"http://127.0.0.1:{port}", settings=FAST_BREAKER) as gateway:
        with running_link_service(infra, port=port):
            code = shorten(gateway, "https://example.com/outage")
            soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
            expiring = shorten(gateway, "https://example.com/expiring", expires_at=soon)
            for known in (code, expiring):
                first = httpx.get(f"{gateway}/{known}", headers=BROWSER)
                assert first.status_code == 302
                assert "x-gateway-cache" not in first.headers
                assert "x-redirect-stale-ttl" not in first.headers  # internal only
        # The link service is gone.
        for _ in range(4):
            replayed = httpx.get(f"{gateway}/{code}", headers=BROWSER)
            assert replayed.status_code == 302
            assert replayed.headers["location"] == "https://example.com/outage"
            assert replayed.headers["x-gateway-cache"] == "stale"
            assert replayed.headers["cache-control"] == "private, no-store"
        unknown = httpx.get(f"{gateway}/neverSeen1")
        assert unknown.status_code == 503
        assert unknown.json()["code"] == "upstream_circuit_open"
        assert int(unknown.headers["retry-after"]) >= 1
        assert metric(gateway, "circuit_breaker_state", breaker="link") == 1
        assert metric(gateway, "gateway_stale_redirects_total") >= 4
        time.sleep(2.2)  # past the expiring link's end: it is never replayed
        assert httpx.get(f"{gateway}/{expiring}").status_code == 503
        # One click from the link service, four from the gateway's replays.
        clicks = read_clicks(infra.bootstrap, code, expected=5)
        assert len(clicks) == 5
        assert len({c["event_id"] for c in clicks}) == 5
        assert all(c["ip_hash"] == clicks[0]["ip_hash"] for c in clicks)  # same key
        # Back again: the breaker lets a trial through and closes.
        with running_link_service(infra, port=port):

            def fresh() -> bool:
                response = httpx.get(f"{gateway}/{code}")
                return response.status_code == 302 and "x-gateway-cache" not in response.headers

            wait_until(fresh)
            assert metric(gateway, "circuit_breaker_state", breaker="link") == 0
            opened = metric(
                gateway, "circuit_breaker_transitions_total", breaker="link", state="open"
            )
            assert opened >= 1


def test_a_full_bulkhead_answers_503_at_once(infra: Infra) -> None:
    # An upstream that accepts connections and never answers (a fake on cue).
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        upstream = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings = {"link_max_in_flight": "2", "link_timeout_seconds": "3"}
        with running_gateway(infra, upstream, settings=settings) as gateway:

            async def scenario() -> tuple[list[int], httpx.Response, float]:
                async with httpx.AsyncClient(timeout=10) as client:
                    stuck = [
                        asyncio.create_task(client.get(f"{gateway}/api/v1/links/abc"))
                        for _ in range(2)
                    ]
                    await asyncio.sleep(0.5)
                    started = time.monotonic()
                    third = await client.get(f"{gateway}/api/v1/links/abc")
                    elapsed = time.monotonic() - started
                    return [r.status_code for r in await asyncio.gather(*stuck)], third, elapsed

            stuck, third, elapsed = asyncio.run(scenario())
            assert third.status_code == 503
            assert third.json()["code"] == "upstream_saturated"
            assert elapsed < 1.0  # refused, not queued behind the stuck ones
            assert stuck == [504, 504]
            assert metric(gateway, "bulkhead_rejections_total", bulkhead="link") == 1


def test_analytics_and_user_down_leave_redirects_untouched(infra: Infra, link_url: str) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = {"analytics_service_url": nowhere, "user_service_url": nowhere}
    with running_gateway(infra, link_url, settings=settings) as gateway:
        code = shorten(gateway, "https://example.com/no-analytics")
        stats = httpx.get(f"{gateway}/api/v1/links/{code}/stats")
        assert stats.status_code == 503
        assert stats.json()["code"] == "upstream_unavailable"
        assert int(stats.headers["retry-after"]) >= 1
        assert httpx.get(f"{gateway}/{code}").status_code == 302
        # The GET was retried (its connection was refused); the login, not
        # idempotent, was not.
        assert (
            metric(
                gateway, "gateway_upstream_retries_total", upstream="analytics", result="retried"
            )
            >= 1
        )
        login = httpx.post(
            f"{gateway}/api/v1/auth/login", json={"email": "a@example.com", "password": "x" * 12}
        )
        assert login.status_code == 503
        assert (
            metric(gateway, "gateway_upstream_retries_total", upstream="user", result="retried")
            == 0
        )


def test_redis_down_resolves_from_postgres_and_stops_asking_redis(infra: Infra) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    link_port = free_port()
    link = running_link_service(
        infra, port=link_port, redis_url=dead_redis, redis_breaker_fail_max="2"
    )
    with link as link_url, running_gateway(infra, link_url) as gateway:
        code = shorten(gateway, "https://example.com/no-redis")
        for _ in range(5):
            assert httpx.get(f"{gateway}/{code}").status_code == 302
        assert metric(link_url, "circuit_breaker_state", breaker="redis") == 1
        assert metric(link_url, "link_cache_lookups_total", result="bypassed") >= 3


def test_postgres_down_keeps_cached_redirects_and_refuses_writes_quickly(infra: Infra) -> None:
    pg_port = free_port()
    postgres = start_postgres(infra.workdir / "pg-outage", pg_port, infra.workdir / "pg-outage.log")
    try:
        ensure_database(pg_port, "link", "link", "link")
        database = f"postgresql://link:link@127.0.0.1:{pg_port}/link"
        with (
            running_link_service(infra, database_url=database) as link_url,
            running_gateway(infra, link_url) as gateway,
        ):
            code = shorten(gateway, "https://example.com/no-postgres")
            assert httpx.get(f"{gateway}/{code}").status_code == 302  # now in Redis
            postgres.stop()
            assert httpx.get(f"{gateway}/{code}").status_code == 302
            started = time.monotonic()
            refused = httpx.post(f"{gateway}/api/v1/links", json={"url": "https://example.com/"})
            assert refused.status_code == 503
            assert refused.json()["code"] == "dependency_unavailable"
            assert refused.headers["retry-after"] == "2"
            assert time.monotonic() - started < 2
            uncached = httpx.get(f"{gateway}/notCached9")
            assert uncached.status_code == 503
    finally:
        postgres.stop()


def test_a_client_cannot_choose_its_click_id(infra: Infra, gateway_url: str) -> None:
    # The gateway sets the id a replayed click shares with the link service's;
    # a client choosing it could make many visits count as one.
    code = shorten(gateway_url, "https://example.com/click-id")
    forged = "0" * 32
    for _ in range(2):
        response = httpx.get(f"{gateway_url}/{code}", headers={"x-click-id": forged})
        assert response.status_code == 302
    clicks = read_clicks(infra.bootstrap, code, expected=2)
    ids = {c["event_id"] for c in clicks}
    assert len(ids) == 2
    assert forged not in ids


def test_tokens_verify_through_a_user_outage_and_unknown_keys_are_503(
    infra: Infra, link_url: str
) -> None:
    user_url, user = start_service(infra, "user", port=0, **FAST_HASHING)
    try:
        with (
            running_gateway(infra, link_url, user_service_url=user_url) as first,
            httpx.Client(base_url=first) as http,
        ):
            account = register(http)
        # A gateway started now fetches the signing keys before any token
        # reaches it, and keeps them through the user service's outage.
        with running_gateway(infra, link_url, user_service_url=user_url) as gateway:
            time.sleep(0.5)  # the background fetch of the keys, started at startup
            user.stop()
            mine = httpx.get(f"{gateway}/api/v1/links", headers=account.bearer)
            assert mine.status_code == 200, mine.text
            login = httpx.post(
                f"{gateway}/api/v1/auth/login",
                json={"email": account.email, "password": account.password},
            )
            assert login.status_code == 503
        # A gateway that never got the keys cannot tell a good token from a
        # forged one: "try again", not "your token is invalid".
        with running_gateway(infra, link_url, user_service_url=user_url) as blind:
            unknown = httpx.get(f"{blind}/api/v1/links", headers=account.bearer)
            assert unknown.status_code == 503
            assert unknown.json()["code"] == "auth_unavailable"
    finally:
        user.stop()
