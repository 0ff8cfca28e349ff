"""Publishing events without making the request wait for the broker.

``EventPublisher.publish`` appends to a bounded in-memory buffer and returns
at once; a background task drains the buffer to Kafka in batches. When the
broker is away the events wait in the buffer and go out when it returns.
When the buffer is full the event is dropped and *counted*
(``events_dropped_total``), never silently: a bounded loss is the price of
never blocking a redirect, and the metric says exactly what was paid.

Delivery is at-least-once (a batch whose acknowledgement was lost is sent
again), so consumers deduplicate by event id.

Trace context travels per event, in the message headers: it is captured when
the event is queued (inside the request that caused it), since the batch is
sent later by a task that belongs to no request (services/chassis/tracing_kafka.py).

An outage is logged, not narrated: one line when the broker goes away, one
summary a minute while it stays away, one line when it is back. aiokafka
itself logs every failed connect and fetch (a dozen lines a second while the
broker is down), so ``start`` also puts a ``RepeatFilter`` on its loggers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import NamedTuple

from aiokafka import AIOKafkaProducer
from opentelemetry.trace import SpanContext
from prometheus_client import Counter, Gauge

from services.chassis.config import (
    CLICK_BUFFER_CAPACITY,
    CLICK_LINGER_MS,
    ClickPublisherSettings,
    KafkaSettings,
)
from services.chassis.kafka_batches import Partitions, send_batches
from services.chassis.repeats import SUMMARY_SECONDS, quiet_aiokafka
from services.chassis.tasks import finish_within
from services.chassis.tracing_kafka import message_context, sending

__all__ = ["EventPublisher", "OutgoingEvent", "create_producer"]

log = logging.getLogger(__name__)

EVENTS_PUBLISHED = Counter(
    "events_published_total", "Events acknowledged by the broker.", ["topic"]
)
EVENTS_DROPPED = Counter(
    "events_dropped_total",
    "Events dropped because the buffer was full or shutdown ran out of time.",
    ["topic", "reason"],
)
SEND_FAILURES = Counter(
    "events_send_failures_total", "Batches the broker did not acknowledge.", ["topic"]
)
BUFFER_DEPTH = Gauge("events_buffer_depth", "Events waiting in memory for the broker.", ["topic"])
BROKER_CONNECTED = Gauge("events_broker_connected", "1 while the producer is connected.", ["topic"])


# aiokafka's default (16 KiB) closes a batch every ~40 clicks. A batch is one
# entry in a produce request and, in the broker, one stored record batch:
# fewer, larger ones cost Kafka less per event, and the local broker (tansu)
# more than that, since its fetches grow slower with every batch a topic
# holds (docs/performance.md, "The broker's share").
MAX_BATCH_BYTES = 256 * 1024


def create_producer(settings: KafkaSettings, *, linger_ms: int = 5) -> AIOKafkaProducer:
    """A producer that waits for every in-sync replica (``acks=all``): an
    acknowledged event survives the loss of a broker."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_idempotence=settings.kafka_enable_idempotence,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=MAX_BATCH_BYTES,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        retry_backoff_ms=100,
    )


async def start_producer(settings: KafkaSettings, *, linger_ms: int = 5) -> AIOKafkaProducer:
    """A started ``create_producer``; a start that fails leaves nothing open."""
    producer = create_producer(settings, linger_ms=linger_ms)
    try:
        await producer.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await producer.stop()
        raise
    return producer


class OutgoingEvent(NamedTuple):
    key: bytes
    value: bytes
    # The trace of the request that caused it; None with tracing off.
    context: SpanContext | None = None


class EventPublisher:
    """A bounded buffer in front of an aiokafka producer, for one topic."""

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        *,
        capacity: int = CLICK_BUFFER_CAPACITY,
        batch_size: int = 500,
        linger_seconds: float = CLICK_LINGER_MS / 1000,
    ) -> None:
        self._settings = settings
        self.topic = topic
        self.capacity = capacity
        self._batch_size = batch_size
        self._linger = linger_seconds
        self._buffer: deque[OutgoingEvent] = deque()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._closed = False
        # When the broker was last found away (None while it is connected or
        # has not been tried), and how many attempts have failed since.
        self._down_since: float | None = None
        self._failed_attempts = 0
        self._last_summary = 0.0
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        # Read at scrape time: a set() per event was a lock taken on every redirect.
        BUFFER_DEPTH.labels(topic).set_function(self._buffer.__len__)
        self._dropped_full = EVENTS_DROPPED.labels(topic, "buffer_full")
        self._last_drop_log = 0.0
        self._partitions = Partitions()

    @classmethod
    def for_clicks(cls, settings: ClickPublisherSettings, topic: str) -> EventPublisher:
        """The click publisher of a gateway or a link service, as configured."""
        return cls(
            settings,
            topic,
            capacity=settings.click_buffer_capacity,
            linger_seconds=settings.click_linger_ms / 1000,
        )

    @property
    def connected(self) -> bool:
        return self._producer is not None

    @property
    def depth(self) -> int:
        return len(self._buffer)

    def publish(self, key: bytes, value: bytes) -> bool:
        """Queue one event; False (and counted) when the buffer is full. Never blocks."""
        if len(self._buffer) >= self.capacity or self._closed:
            self._dropped_full.inc()
            now = time.monotonic()
            if now - self._last_drop_log > 5:  # one line per burst, not per event
                self._last_drop_log = now
                log.error("event buffer full, dropping", extra={"topic": self.topic})
            return False
        self._buffer.append(OutgoingEvent(key, value, message_context(self.topic)))
        self._wakeup.set()
        return True

    async def start(self) -> None:
        """Start draining in the background; the broker need not be up yet."""
        quiet_aiokafka()
        self._task = asyncio.create_task(self._run(), name=f"publisher:{self.topic}")

    async def stop(self, timeout_seconds: float) -> None:
        """Flush what is buffered within the bound, then close; count what is left."""
        self._stopping = True
        self._wakeup.set()
        await finish_within(self._task, timeout_seconds)
        if self._buffer:
            EVENTS_DROPPED.labels(self.topic, "shutdown").inc(len(self._buffer))
            log.error(
                "events lost at shutdown", extra={"topic": self.topic, "count": len(self._buffer)}
            )
            self._buffer.clear()
        self._closed = True
        await self._disconnect()

    async def _run(self) -> None:
        backoff = 0.1
        while not (self._stopping and not self._buffer):
            # Connect eagerly, not at the first event: readiness reports the
            # broker, and the first redirect should not pay for the handshake.
            if self._producer is None and not await self._connect():
                if self._stopping:
                    return  # no broker to flush to; stop() counts what is left
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            if not self._buffer:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if len(self._buffer) < self._batch_size and not self._stopping:
                await asyncio.sleep(self._linger)  # let a batch form
            if await self._send_batch():
                backoff = 0.1
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _send_batch(self) -> bool:
        assert self._producer is not None
        batch = [self._buffer.popleft() for _ in range(min(self._batch_size, len(self._buffer)))]
        with sending(self.topic, [event.context for event in batch]):
            unacknowledged, error = await send_batches(
                self._producer, self.topic, batch, self._partitions
            )
        failed = [batch[index] for index in unacknowledged]
        EVENTS_PUBLISHED.labels(self.topic).inc(len(batch) - len(failed))
        if failed:
            # Back to the front, so the oldest events still go first.
            self._buffer.extendleft(reversed(failed))
            SEND_FAILURES.labels(self.topic).inc()
            self._broker_failed("broker did not acknowledge a batch", [error])
            await self._disconnect()
        return not failed

    async def _connect(self) -> bool:
        try:
            self._producer = await start_producer(self._settings)
        except Exception as exc:
            self._broker_failed("broker unreachable", [exc])
            return False
        BROKER_CONNECTED.labels(self.topic).set(1)
        extra: dict[str, object] = {"topic": self.topic}
        if self._down_since is not None:
            extra["down_seconds"] = round(time.monotonic() - self._down_since, 1)
            extra["failed_attempts"] = self._failed_attempts
        log.info("connected to broker", extra=extra)
        self._down_since = None
        return True

    def _broker_failed(self, what: str, results: list[object]) -> None:
        """One line when the broker goes away, then a summary per SUMMARY_SECONDS."""
        now = time.monotonic()
        error = next((repr(r) for r in results if isinstance(r, BaseException)), None)
        extra: dict[str, object] = {
            "topic": self.topic,
            "error": error,
            "buffered": len(self._buffer),
        }
        if self._down_since is None:
            self._down_since, self._failed_attempts, self._last_summary = now, 1, now
            log.warning(what, extra=extra)
            return
        self._failed_attempts += 1
        if now - self._last_summary >= SUMMARY_SECONDS:
            self._last_summary = now
            extra["down_seconds"] = round(now - self._down_since, 1)
            extra["failed_attempts"] = self._failed_attempts
            log.warning("broker still unreachable", extra=extra)

    async def _disconnect(self) -> None:
        producer, self._producer = self._producer, None
        BROKER_CONNECTED.labels(self.topic).set(0)
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
