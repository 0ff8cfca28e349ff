"""One click event per redirect, published without waiting for the broker."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from infra.devstack.processes import create_topics, free_port, start_broker
from services.chassis.events import TOPICS
from tests.conftest import Infra, running_gateway, running_link_service
from tests.kafka_reader import read_clicks
from tests.metrics import metric


def new_link(http: httpx.Client) -> str:
    code = "c-" + uuid.uuid4().hex[:10]
    response = http.post("/api/v1/links", json={"url": "https://example.com/c", "alias": code})
    assert response.status_code == 201
    return code


def test_every_redirect_publishes_one_click_event(client: httpx.Client, infra: Infra) -> None:
    code = new_link(client)
    headers = {"referer": "https://news.example/item?id=1", "user-agent": "pytest-agent/1.0"}
    for _ in range(5):
        assert client.get(f"/{code}", headers=headers).status_code == 302
    events = read_clicks(infra.bootstrap, code, expected=5)
    assert len(events) == 5
    assert len({e["event_id"] for e in events}) == 5
    for event in events:
        assert event["schema_version"] == 1
        assert event["referrer"] == "https://news.example/item?id=1"
        assert event["user_agent"] == "pytest-agent/1.0"
        assert event["occurred_at"]
        assert event["request_id"]
        # The client's address is kept only as a keyed hash.
        assert re.fullmatch(r"[0-9a-f]{32}", event["ip_hash"])
    assert len({e["ip_hash"] for e in events}) == 1


def test_failed_redirects_publish_nothing(client: httpx.Client, infra: Infra) -> None:
    code = "missing-" + uuid.uuid4().hex[:8]
    assert client.get(f"/{code}").status_code == 404
    assert read_clicks(infra.bootstrap, code, expected=1, timeout=2) == []


@contextmanager
def stack_without_broker(
    infra: Infra, broker_port: int, buffer_capacity: int = 100_000
) -> Iterator[tuple[str, httpx.Client]]:
    """A link service and gateway whose broker is not (yet) on ``broker_port``."""
    with (
        running_link_service(
            infra,
            kafka_bootstrap_servers=f"127.0.0.1:{broker_port}",
            click_buffer_capacity=str(buffer_capacity),
        ) as link,
        running_gateway(infra, link) as gateway,
        httpx.Client(base_url=gateway, timeout=10) as http,
    ):
        yield link, http


def test_clicks_wait_in_the_buffer_while_the_broker_is_away(infra: Infra) -> None:
    port = free_port()
    with stack_without_broker(infra, port) as (link, http):
        code = new_link(http)
        started = time.monotonic()
        for _ in range(20):
            assert http.get(f"/{code}").status_code == 302
        # Redirects did not wait for a broker that is not there.
        assert time.monotonic() - started < 5
        assert metric(link, "events_buffer_depth", topic="clicks") == 20
        ready = httpx.get(f"{link}/readyz").json()
        assert ready["status"] == "degraded"
        assert ready["checks"]["kafka"] == "down"

        broker = start_broker(port, infra.workdir / f"broker-{port}.log")
        try:
            create_topics(f"127.0.0.1:{port}", TOPICS)
            events = read_clicks(f"127.0.0.1:{port}", code, expected=20, timeout=30)
            assert len(events) == 20
            assert metric(link, "events_buffer_depth", topic="clicks") == 0
        finally:
            broker.stop()


def test_a_full_buffer_drops_and_counts_instead_of_blocking(infra: Infra) -> None:
    with stack_without_broker(infra, free_port(), buffer_capacity=5) as (link, http):
        code = new_link(http)
        for _ in range(8):
            assert http.get(f"/{code}").status_code == 302
        assert metric(link, "events_buffer_depth", topic="clicks") == 5
        assert metric(link, "events_dropped_total", topic="clicks", reason="buffer_full") == 3
