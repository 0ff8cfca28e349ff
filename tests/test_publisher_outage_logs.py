"""A broker outage in the log: one line down, a summary a while, one line back.

Issue 19: a gateway wrote some ten error lines a second while Kafka was down
(832 in 40 s), most of them aiokafka's own. The publisher runs here against a
port where no broker listens, then a broker appears on that port (a TCP
relay to the session's broker), and the test counts what reached the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import pytest

from infra.devstack.processes import free_port
from services.chassis import kafka
from services.chassis.config import KafkaSettings
from services.chassis.events import CLICKS_TOPIC
from services.chassis.kafka import EventPublisher
from services.chassis.repeats import RepeatFilter
from tests.conftest import Infra

OURS = "services.chassis.kafka"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


Relay = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def relay_to(bootstrap: str) -> Relay:
    """A connection handler that relays each client to the broker at ``bootstrap``."""
    host, port = bootstrap.rsplit(":", 1)

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    return relay


async def test_an_outage_is_logged_once_summarised_and_closed(
    infra: Infra, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kafka, "SUMMARY_SECONDS", 2.0)
    caplog.set_level(logging.INFO)
    port = free_port()
    settings = KafkaSettings(
        kafka_bootstrap_servers=f"127.0.0.1:{port}", kafka_enable_idempotence=False
    )
    publisher = EventPublisher(settings, CLICKS_TOPIC)
    await publisher.start()
    try:
        await asyncio.sleep(7)  # some ten connection attempts, backing off to 2 s apart
        broker = await asyncio.start_server(relay_to(infra.bootstrap), "127.0.0.1", port)
        async with broker:
            for _ in range(100):
                if publisher.connected:
                    break
                await asyncio.sleep(0.1)
            assert publisher.connected
    finally:
        await publisher.stop(2)
    ours = [r for r in caplog.records if r.name == OURS]
    theirs = [r for r in caplog.records if r.name.startswith("aiokafka")]
    assert ours[0].getMessage() == "broker unreachable"
    summaries = [r for r in ours if r.getMessage() == "broker still unreachable"]
    assert 1 <= len(summaries) <= 4, [r.getMessage() for r in ours]
    (back,) = [r for r in ours if r.getMessage() == "connected to broker"]
    assert back.down_seconds >= 6  # type: ignore[attr-defined]
    assert back.failed_attempts >= 5  # type: ignore[attr-defined]
    kinds = {(r.name, r.levelno, r.msg) for r in theirs}
    # At most one line per kind of aiokafka failure (none if another test's
    # outage already used the minute).
    assert len(theirs) <= len(kinds) <= 3, [r.getMessage() for r in theirs]


def test_repeat_filter_passes_the_first_then_one_summary_per_window() -> None:
    now = [0.0]
    gate = RepeatFilter(window=60, clock=lambda: now[0])

    def line(template: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", logging.ERROR, "", 0, template, args, None)

    passed = []
    for second in range(0, 125):
        now[0] = float(second)
        for node in (1, 2):  # the same failure, another node: one kind
            record = line("Unable connect to node with id %s: %s", node, "refused")
            if gate.filter(record):
                passed.append((second, getattr(record, "suppressed", None)))
    assert passed == [(0, None), (60, 119), (120, 119)]
    assert gate.filter(line("Unable to update metadata from %s", [1]))  # another kind
