"""Rate limits at the gateway: headers, 429s, keys, spoofing, and Redis outages."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import redis

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
        yield http


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
        assert "ratelimit-limit" not in redirect.headers
        login = http.post(
            "/api/v1/auth/login", json={"email": "a@example.com", "password": "x" * 12}
        )
        assert login.status_code == 503
        assert login.json()["code"] == "rate_limiter_unavailable"
        assert "retry-after" in login.headers
        assert http.get("/readyz").json()["checks"]["redis"] == "down"
