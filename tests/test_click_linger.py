"""Clicks wait ``CLICK_LINGER_MS`` in the buffer for others, then leave together.

At low rates each record batch is a wake-up for the broker and for every
consumer group of the topic, so the wait is what makes a batch out of a
trickle of clicks (docs/adr/0020-click-linger.md). Against the session's
broker: a click published alone is still buffered well within the wait,
one published during it goes out with it, and both are sent after it.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.config import GatewaySettings
from services.chassis.events import CLICKS_TOPIC
from services.chassis.kafka import EventPublisher
from services.link.config import LinkSettings
from tests.conftest import Infra

LINGER_MS = 800
KEY = "k" * 32


async def _until_sent(publisher: EventPublisher, limit: float) -> list[int]:
    """The buffer's depth every 20 ms until it is empty (or ``limit`` seconds pass)."""
    depths = []
    deadline = time.monotonic() + limit
    while publisher.depth and time.monotonic() < deadline:
        depths.append(publisher.depth)
        await asyncio.sleep(0.02)
    return depths


async def test_clicks_within_the_linger_leave_together_after_it(infra: Infra) -> None:
    settings = GatewaySettings(
        kafka_bootstrap_servers=infra.bootstrap,
        kafka_enable_idempotence=False,
        click_linger_ms=LINGER_MS,
        internal_auth_key=KEY,
    )
    publisher = EventPublisher.for_clicks(settings, CLICKS_TOPIC)
    await publisher.start()
    try:
        for _ in range(100):  # connected first: the wait measured is the linger's
            if publisher.connected:
                break
            await asyncio.sleep(0.05)
        assert publisher.connected
        started = time.monotonic()
        publisher.publish(b"linger", b'{"n": 1}')
        await asyncio.sleep(0.2)
        alone = publisher.depth  # well within the wait: not sent yet
        publisher.publish(b"linger", b'{"n": 2}')
        depths = await _until_sent(publisher, limit=10)
        waited = time.monotonic() - started
    finally:
        await publisher.stop(2)
    assert alone == 1
    # Both still there until the batch left: never one sent before the other.
    assert depths
    assert set(depths) == {2}, depths
    assert publisher.depth == 0
    assert waited >= LINGER_MS / 1000


def test_both_publishers_read_the_linger_from_their_own_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_CLICK_LINGER_MS", "7")
    monkeypatch.setenv("LINK_CLICK_LINGER_MS", "9")
    monkeypatch.setenv("INTERNAL_AUTH_KEY", KEY)
    assert GatewaySettings().click_linger_ms == 7
    assert LinkSettings().click_linger_ms == 9
    assert GatewaySettings.model_fields["click_linger_ms"].default == 50
