"""Visit limits: exactly ``max_visits`` redirects, then 410, whatever races and caches."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from services.chassis.identity import Identity
from tests.accounts import Account, register
from tests.conftest import Infra, running_gateway, running_link_service
from tests.metrics import metric
from tests.user_client import SIGNER


@pytest.fixture(scope="module")
def second_gateway(infra: Infra, gateway_url: str, user_url: str) -> Iterator[str]:
    """Another gateway in front of another link-service process, on the same stores.

    Racing through two processes of each proves the count lives in Postgres:
    no lock or counter inside one process could make both agree.
    """
    with (
        running_link_service(infra) as link_url,
        running_gateway(infra, link_url, user_service_url=user_url) as url,
    ):
        yield url


@pytest.fixture(scope="module")
def owner(gateway_url: str) -> Account:
    with httpx.Client(base_url=gateway_url, timeout=10) as http:
        return register(http)


def create(client: httpx.Client, account: Account | None = None, **fields: object) -> str:
    body = {"url": "https://example.com/limited", **fields}
    headers = account.bearer if account else {}
    response = client.post("/api/v1/links", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["max_visits"] == fields.get("max_visits")
    code: str = response.json()["code"]
    return code


def follow_direct(link_url: str, code: str) -> httpx.Response:
    """A redirect as the link service answers the gateway, internal headers and all."""
    path = f"/{code}"
    anonymous = Identity(None, "anonymous", "203.0.113.7")
    headers = SIGNER.headers("GET", path.encode(), anonymous)
    return httpx.get(link_url + path, headers=headers, timeout=10)


def visits_in_postgres(infra: Infra, code: str) -> int:
    async def read() -> int:
        connection = await asyncpg.connect(infra.link_database_url)
        try:
            value: int = await connection.fetchval("SELECT visits FROM links WHERE code=$1", code)
        finally:
            await connection.close()
        return value

    return asyncio.run(read())


def test_a_limited_link_redirects_max_visits_times_then_answers_410(
    client: httpx.Client, link_url: str
) -> None:
    code = create(client, max_visits=2)
    counted_before, refused_before = (
        metric(link_url, "link_limited_visits_total", result=r) for r in ("counted", "refused")
    )
    for _ in range(2):
        response = follow_direct(link_url, code)
        assert response.status_code == 302
        # Neither a browser nor the gateway may replay it past the count.
        assert response.headers["cache-control"] == "private, no-store"
        assert "x-redirect-stale-ttl" not in response.headers
    refused = client.get(f"/{code}")
    assert refused.status_code == 410
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "visit_limit_reached"
    assert client.get(f"/api/v1/links/{code}").json()["visits"] == 2
    # The session's gateway goes to the same link service: the figures are exact.
    assert metric(link_url, "link_limited_visits_total", result="counted") == counted_before + 2
    assert metric(link_url, "link_limited_visits_total", result="refused") == refused_before + 1


def test_unlimited_links_keep_their_replay_header_and_count_nothing(
    client: httpx.Client, link_url: str
) -> None:
    code = create(client)
    response = follow_direct(link_url, code)
    assert response.status_code == 302
    assert "x-redirect-stale-ttl" in response.headers
    assert client.get(f"/api/v1/links/{code}").json()["visits"] == 0


def test_many_clients_racing_for_the_last_visits_get_exactly_max_visits_redirects(
    client: httpx.Client, gateway_url: str, second_gateway: str, infra: Infra
) -> None:
    limit, racers = 25, 160
    code = create(client, max_visits=limit)
    # One visit first: the link is now in the Redis cache the racers will read.
    assert client.get(f"/{code}").status_code == 302

    async def race() -> Counter[int]:
        limits = httpx.Limits(max_connections=racers)
        async with (
            httpx.AsyncClient(base_url=gateway_url, limits=limits, timeout=20) as a,
            httpx.AsyncClient(base_url=second_gateway, limits=limits, timeout=20) as b,
        ):
            start = asyncio.Event()

            async def visit(http: httpx.AsyncClient) -> int:
                await start.wait()
                return (await http.get(f"/{code}")).status_code

            tasks = [asyncio.create_task(visit(a if i % 2 else b)) for i in range(racers)]
            await asyncio.sleep(0.05)
            start.set()
            return Counter(await asyncio.gather(*tasks))

    statuses = asyncio.run(race())
    assert statuses == Counter({302: limit - 1, 410: racers - limit + 1})
    assert visits_in_postgres(infra, code) == limit


def test_raising_the_limit_reopens_the_link_and_clearing_it_removes_it(
    client: httpx.Client, link_url: str, owner: Account
) -> None:
    code = create(client, owner, max_visits=1)
    assert client.get(f"/{code}").status_code == 302
    assert client.get(f"/{code}").status_code == 410
    raised = client.patch(f"/api/v1/links/{code}", json={"max_visits": 2}, headers=owner.bearer)
    assert raised.status_code == 200
    assert raised.json()["max_visits"] == 2
    assert client.get(f"/{code}").status_code == 302
    assert client.get(f"/{code}").status_code == 410
    cleared = client.patch(f"/api/v1/links/{code}", json={"max_visits": None}, headers=owner.bearer)
    assert cleared.json()["max_visits"] is None
    response = follow_direct(link_url, code)
    assert response.status_code == 302
    assert "x-redirect-stale-ttl" in response.headers  # replayable again


def test_setting_a_limit_on_a_cached_link_takes_effect_on_the_next_visit(
    client: httpx.Client, owner: Account
) -> None:
    code = create(client, owner)
    assert client.get(f"/{code}").status_code == 302  # cached without a limit
    client.patch(f"/api/v1/links/{code}", json={"max_visits": 1}, headers=owner.bearer)
    assert client.get(f"/{code}").status_code == 302
    assert client.get(f"/{code}").status_code == 410


@pytest.mark.parametrize("bad", [0, -3, 1_000_000_001, "5", 2.5, True])
def test_bad_limits_are_refused_and_nothing_is_written(client: httpx.Client, bad: object) -> None:
    response = client.post(
        "/api/v1/links", json={"url": "https://example.com/bad-limit", "max_visits": bad}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"


def test_a_permanent_redirect_cannot_have_a_limit(client: httpx.Client, owner: Account) -> None:
    refused = client.post(
        "/api/v1/links",
        json={"url": "https://example.com/p", "redirect_type": 301, "max_visits": 3},
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_link"
    code = create(client, owner, max_visits=3)
    changed = client.patch(
        f"/api/v1/links/{code}", json={"redirect_type": 308}, headers=owner.bearer
    )
    assert changed.status_code == 422
    # Rolled back: still a counted temporary redirect.
    assert client.get(f"/api/v1/links/{code}").json()["redirect_type"] == 302


def test_only_the_owner_sees_how_many_visits_an_owned_link_had(
    client: httpx.Client, owner: Account
) -> None:
    code = create(client, owner, max_visits=3)
    assert client.get(f"/{code}").status_code == 302
    mine = client.get(f"/api/v1/links/{code}", headers=owner.bearer).json()
    assert (mine["visits"], mine["max_visits"]) == (1, 3)
    # Like its stats: usage is the owner's. The limit itself is public, as the expiry is.
    theirs = client.get(f"/api/v1/links/{code}").json()
    assert (theirs["visits"], theirs["max_visits"]) == (None, 3)
