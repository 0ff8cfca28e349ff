"""Proof of accounting: redirects served == clicks counted, through failures.

Each scenario drives N redirects through a gateway with concurrency, breaks
something on the way, and then requires the link's stats to reach exactly
the number of redirects that were answered with a redirect, and to stay
there (nothing counted twice later). Scenarios run their own analytics
database and consumer group, so they count the shared ``clicks`` topic
independently of the session's analytics service.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from infra.devstack.processes import ManagedProcess, ensure_database, free_port
from tests.conftest import Infra, running_gateway, start_service

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"
_scenarios = itertools.count()


@dataclass
class Pipeline:
    """A scenario's own analytics (one or more consumers) behind its own gateway."""

    infra: Infra
    name: str
    # The gateway routes stats to the consumer on this port; restarts reuse it.
    port: int = field(default_factory=free_port)
    gateway: str = ""
    consumers: list[ManagedProcess] = field(default_factory=list)

    def start_consumer(self, *, routed: bool = True) -> ManagedProcess:
        database = f"analytics_{self.name}"
        _, process = start_service(
            self.infra,
            "analytics",
            port=self.port if routed else 0,
            database_url=f"postgresql://{database}:{database}@127.0.0.1:"
            f"{self.infra.ports.postgres}/{database}",
            consumer_group=f"accounting-{self.name}",
        )
        self.consumers.append(process)
        return process


@contextmanager
def pipeline(infra: Infra, link_url: str, user_url: str) -> Iterator[Pipeline]:
    name = f"s{next(_scenarios)}_{uuid.uuid4().hex[:6]}"
    database = f"analytics_{name}"
    ensure_database(infra.ports.postgres, database, database, database)
    scenario = Pipeline(infra, name)
    try:
        scenario.start_consumer()
        with running_gateway(
            infra,
            link_url,
            user_service_url=user_url,
            analytics_service_url=f"http://127.0.0.1:{scenario.port}",
        ) as gateway:
            scenario.gateway = gateway
            yield scenario
    finally:
        for process in scenario.consumers:
            process.stop()


def new_link(gateway: str) -> str:
    response = httpx.post(f"{gateway}/api/v1/links", json={"url": "https://example.com/acct"})
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


def drive(
    gateway: str,
    code: str,
    n: int,
    concurrency: int = 16,
    during: Callable[[int], None] | None = None,
) -> int:
    """Follow ``code`` ``n`` times; ``during(i)`` runs after the i-th; redirects served."""
    served = 0
    lock = threading.Lock()
    local = threading.local()
    clients: list[httpx.Client] = []

    def one(i: int) -> None:
        nonlocal served
        if not hasattr(local, "http"):
            local.http = httpx.Client(timeout=30, headers={"user-agent": BROWSER})
            with lock:
                clients.append(local.http)
        response = local.http.get(f"{gateway}/{code}")
        if 300 <= response.status_code < 400:
            with lock:
                served += 1
        if during is not None:
            during(i)

    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, range(n)))
    finally:
        for client in clients:
            client.close()
    return served


def counted(gateway: str, code: str) -> int:
    response = httpx.get(f"{gateway}/api/v1/links/{code}/stats", timeout=10)
    if response.status_code != 200:
        return -1
    totals = response.json()["totals"]
    return int(totals["clicks"]) + int(totals["bot_clicks"])


def assert_counted_exactly(gateway: str, code: str, served: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        seen = counted(gateway, code)
        if seen >= served:
            break
        time.sleep(0.25)
    assert seen == served, f"{seen} counted for {served} redirects served"
    time.sleep(2)  # anything counted twice would show up now
    assert counted(gateway, code) == served


def test_plain(infra: Infra, link_url: str, user_url: str) -> None:
    with pipeline(infra, link_url, user_url) as scenario:
        code = new_link(scenario.gateway)
        served = drive(scenario.gateway, code, 400)
        assert served == 400
        assert_counted_exactly(scenario.gateway, code, served)


def test_a_consumer_killed_mid_stream_and_restarted(
    infra: Infra, link_url: str, user_url: str
) -> None:
    with pipeline(infra, link_url, user_url) as scenario:
        code = new_link(scenario.gateway)

        def kill_at_the_middle(i: int) -> None:
            if i == 150:
                scenario.consumers[0].stop(timeout=0)  # SIGTERM, then SIGKILL at once

        served = drive(scenario.gateway, code, 300, during=kill_at_the_middle)
        scenario.consumers.pop(0)
        scenario.start_consumer()
        assert_counted_exactly(scenario.gateway, code, served)


def test_two_consumers_rebalance_mid_stream(infra: Infra, link_url: str, user_url: str) -> None:
    with pipeline(infra, link_url, user_url) as scenario:
        code = new_link(scenario.gateway)
        joined = threading.Thread(target=lambda: scenario.start_consumer(routed=False))

        def second_consumer_at_the_middle(i: int) -> None:
            if i == 100:
                joined.start()

        served = drive(scenario.gateway, code, 400, during=second_consumer_at_the_middle)
        joined.join()
        assert len(scenario.consumers) == 2
        assert_counted_exactly(scenario.gateway, code, served)


def test_the_broker_paused_for_seconds(infra: Infra, link_url: str, user_url: str) -> None:
    with pipeline(infra, link_url, user_url) as scenario:
        code = new_link(scenario.gateway)
        infra.broker.pause()
        try:
            served = drive(scenario.gateway, code, 200)
            time.sleep(4)
        finally:
            infra.broker.resume()
        # Redirects never waited for the broker: all served while it was paused.
        assert served == 200
        assert_counted_exactly(scenario.gateway, code, served, timeout=90)


def test_analytics_down_for_a_while_then_back(infra: Infra, link_url: str, user_url: str) -> None:
    with pipeline(infra, link_url, user_url) as scenario:
        code = new_link(scenario.gateway)
        served = drive(scenario.gateway, code, 100)
        scenario.consumers.pop(0).stop()
        served += drive(scenario.gateway, code, 200)
        stats = httpx.get(f"{scenario.gateway}/api/v1/links/{code}/stats")
        assert stats.status_code == 503  # stats are away; redirects were not
        scenario.start_consumer()
        assert_counted_exactly(scenario.gateway, code, served)
