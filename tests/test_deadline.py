"""A visit the gateway stopped waiting for is not counted (services/chassis/deadline.py).

The gateway tells the link service how long it waits (``x-timeout-ms``);
the link service counts no visit of a visit-limited link after that, and
bounds the count's statement by what is left. Here Postgres is made slow
on cue: the test holds the link's row lock, so the count waits on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from services.chassis.deadline import TIMEOUT_HEADER, accept_budget, remaining
from tests.conftest import Infra, running_gateway
from tests.metrics import metric
from tests.test_visit_limits import create, visits_in_postgres

GATEWAY_WAITS = 0.5  # seconds, the impatient gateway's link timeout


@pytest.fixture(scope="module")
def impatient_gateway(infra: Infra, link_url: str, user_url: str) -> Iterator[str]:
    with running_gateway(
        infra, link_url, user_service_url=user_url, link_timeout_seconds=str(GATEWAY_WAITS)
    ) as url:
        yield url


async def _follow_while_locked(infra: Infra, gateway: str, code: str) -> httpx.Response:
    """Follow ``code`` while its row is locked; release the lock only after the answer."""
    admin = await asyncpg.connect(infra.link_database_url)
    try:
        async with admin.transaction():
            await admin.execute("SELECT 1 FROM links WHERE code = $1 FOR UPDATE", code)
            async with httpx.AsyncClient(base_url=gateway, timeout=10) as http:
                answer = await http.get(f"/{code}")
            await asyncio.sleep(0.2)  # a count still waiting would be waiting now
    finally:
        await admin.close()
    return answer


def test_a_visit_the_gateway_gave_up_on_is_not_counted(
    infra: Infra, client: httpx.Client, link_url: str, impatient_gateway: str
) -> None:
    code = create(client, max_visits=1)
    late = metric(link_url, "link_limited_visits_total", result="late")
    started = time.monotonic()
    answer = asyncio.run(_follow_while_locked(infra, impatient_gateway, code))
    assert answer.status_code == 504, answer.text
    assert time.monotonic() - started < GATEWAY_WAITS + 1.0
    time.sleep(0.3)  # without the bound, the count commits once the lock is gone
    assert visits_in_postgres(infra, code) == 0
    assert metric(link_url, "link_limited_visits_total", result="late") == late + 1
    # The one visit the link allows is still there for the next visitor.
    assert client.get(f"/{code}").status_code == 302
    assert client.get(f"/{code}").status_code == 410


@pytest.fixture(scope="module")
def unbatched_gateway(infra: Infra, link_url: str, user_url: str) -> Iterator[str]:
    """Visits proxied one by one, with the client's headers (as sampled visits are)."""
    with running_gateway(
        infra, link_url, user_service_url=user_url, link_batches_in_flight="0"
    ) as url:
        yield url


def test_a_clients_own_budget_is_not_passed_on(
    client: httpx.Client, unbatched_gateway: str
) -> None:
    """Only the gateway says how long it waits: a client's 1 ms would make
    the link service refuse every visit as late."""
    code = create(client, max_visits=1)
    with httpx.Client(base_url=unbatched_gateway, timeout=10) as http:
        answer = http.get(f"/{code}", headers={TIMEOUT_HEADER: "1"})
    assert answer.status_code == 302, answer.text


def _scope(*headers: tuple[bytes, bytes]) -> dict[str, object]:
    return {"type": "http", "headers": list(headers)}


@pytest.mark.parametrize("value", [b"", b"abc", b"-5", b"0", b"1.5", b"600001", b"9" * 40])
def test_a_budget_that_is_not_a_sane_number_of_ms_is_ignored(value: bytes) -> None:
    accept_budget(_scope((b"x-timeout-ms", value)))
    assert remaining() is None


def test_the_budget_runs_from_arrival_less_a_margin_for_the_way_back() -> None:
    accept_budget(_scope((b"x-timeout-ms", b"2000")))
    left = remaining()
    assert left is not None
    assert 1.85 < left <= 1.9  # 100 ms kept back
    accept_budget(_scope((b"x-timeout-ms", b"200")))
    left = remaining()
    assert left is not None
    assert 0.15 < left <= 0.18  # 10 % kept back
    accept_budget(_scope())
    assert remaining() is None
