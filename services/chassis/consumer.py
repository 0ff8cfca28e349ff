"""Consuming a topic in batches: write the batch, then commit its offsets.

The loop, for one topic in one consumer group::

    getmany()  ->  decode (poison to the dead-letter topic)
               ->  write(batch)          one database transaction
               ->  commit(offsets)       only after the write committed

A crash anywhere before the offset commit delivers the batch again, and
``write`` skips what it already applied by event id: every event counts
exactly once. The same holds when the database or the broker is away: the
batch is retried with backoff until it is written (one log line per
outage), and nothing after it is read meanwhile.

Rebalances: the listener makes a revocation wait (a bounded time) for the
batch in flight to be written and committed, so the next owner of a
partition starts after it. If it is not done in time, or a commit is refused
because the group moved on, the batch's events are read again by the new
owner and skipped as duplicates. Offsets are only ever committed for
partitions still assigned, and only for records that were written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from services.chassis.config import ConsumerSettings
from services.chassis.consumer_metrics import (
    BATCH_RETRIES,
    BATCH_SECONDS,
    COMMIT_FAILURES,
    CONSUMER_LAG,
)
from services.chassis.deadletter import DeadLetters, Poisoned
from services.chassis.decoding import PoisonMessage
from services.chassis.outage import Backoff, Outage
from services.chassis.tasks import finish_within
from services.chassis.tracing_kafka import consuming

__all__ = ["BatchConsumer"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Batch = dict[TopicPartition, list[Any]]  # aiokafka's ConsumerRecord lists


class BatchConsumer(Generic[T]):
    """One consumer-group member on ``topic``: ``decode`` each message, ``write`` each batch."""

    def __init__(
        self,
        settings: ConsumerSettings,
        *,
        topic: str,
        group_id: str,
        decode: Callable[[bytes | None], T] | None = None,
        write: Callable[[Sequence[T]], Awaitable[None]],
        dead_letter_topic: str | None,
        decode_record: Callable[[Any], T] | None = None,
    ) -> None:
        """``decode`` reads a message's value; ``decode_record``, if given instead,
        the whole record (its headers too: a consumer that keeps each event's
        trace context)."""
        self.topic = topic
        self._settings = settings
        self._group_id = group_id
        if decode_record is None:
            assert decode is not None, "decode or decode_record"
            value_decoder = decode

            def decode_record(record: Any) -> T:
                return value_decoder(record.value)

        self._decode = decode_record
        self._write = write
        self._dead_letters = DeadLetters(settings, topic, dead_letter_topic)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._backoff = Backoff(self._stopping)
        # Held from a batch's write to its commit; a revocation waits for it.
        self._in_flight = asyncio.Lock()
        self._broker = Outage(log, "broker", topic=topic)
        self._batches = Outage(log, "batch processing", topic=topic)

    async def start(self) -> None:
        """Consume in the background; the broker and the database need not be up yet."""
        self._task = asyncio.create_task(self._run(), name=f"consumer:{self.topic}")

    async def stop(self, timeout_seconds: float) -> None:
        """Finish the batch in flight within the bound, then leave the group."""
        deadline = time.monotonic() + timeout_seconds
        self._stopping.set()
        # A batch cut short is not committed: it is delivered again, and skipped.
        await finish_within(self._task, timeout_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._disconnect(), max(0.1, deadline - time.monotonic()))

    async def probe(self) -> None:
        """Raise unless the broker answers a metadata request (readiness)."""
        if self._consumer is None:
            raise ConnectionError("not connected to the broker")
        await self._consumer.topics()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._step()
            except Exception:
                # A bug, not an outage (those are handled where they occur):
                # start over from the committed offsets rather than stop
                # counting silently.
                log.exception("consumer failed, restarting it", extra={"topic": self.topic})
                await self._disconnect()
                await self._backoff.wait()

    async def _step(self) -> None:
        if self._consumer is None and not await self._connect():
            await self._backoff.wait()
            return
        assert self._consumer is not None
        try:
            batch: Batch = await self._consumer.getmany(
                timeout_ms=self._settings.batch_timeout_ms,
                max_records=self._settings.batch_max_records,
            )
        except KafkaError as exc:
            self._broker.failed(exc)
            await self._disconnect()
            await self._backoff.wait()
            return
        if batch:
            async with self._in_flight:
                await self._process(batch)
        await self._report_lag()

    async def _process(self, batch: Batch) -> None:
        started = time.perf_counter()
        items: list[T] = []
        poison: list[Poisoned] = []
        # Each event's trace context (Kafka headers), for its processing span.
        headers: list[Sequence[tuple[str, bytes]] | None] = []
        for records in batch.values():
            for record in records:
                try:
                    items.append(self._decode(record))
                    headers.append(record.headers)
                except PoisonMessage as exc:
                    poison.append((record, exc))
        with consuming(self.topic, headers):
            if await self._until_written(items, poison):
                await self._commit(batch)
                BATCH_SECONDS.labels(self.topic).observe(time.perf_counter() - started)

    async def _until_written(self, items: list[T], poison: list[Poisoned]) -> bool:
        """Write the batch, retrying until it is done; False if asked to stop first."""
        while True:
            try:
                if poison:
                    await self._dead_letters.set_aside(poison)
                    poison = []  # not again when only the write is retried
                async with asyncio.timeout(self._settings.write_timeout_seconds):
                    await self._write(items)
            except Exception as exc:
                # Any failure, ours included: skipping a batch would lose its
                # clicks, so it is retried, and the lag and the log show it.
                self._batches.failed(exc)
                BATCH_RETRIES.labels(self.topic).inc()
                if self._stopping.is_set():
                    return False
                await self._backoff.wait()
                if self._stopping.is_set():
                    return False
            else:
                self._batches.recovered()
                self._backoff.reset()
                return True

    async def _commit(self, batch: Batch) -> None:
        assert self._consumer is not None
        assigned = self._consumer.assignment()
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if tp in assigned}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            # Written but not committed: harmless, the events are skipped
            # when they come again. A later commit covers these offsets.
            COMMIT_FAILURES.labels(self.topic).inc()
            log.warning("offsets not committed", extra={"topic": self.topic, "error": repr(exc)})
        else:
            self._broker.recovered()

    async def _report_lag(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            # The highwater is known once a fetch answered for the partition,
            # and then so is the position; before that there is nothing to say.
            if tp not in consumer.assignment() or (highwater := consumer.highwater(tp)) is None:
                continue
            try:
                position = await consumer.position(tp)
            except IllegalStateError:  # revoked meanwhile
                continue
            CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - position))

    async def _connect(self) -> bool:
        settings = self._settings
        # aiokafka's own request timeout (40 s), not the short one producers
        # use: a JoinGroup request is answered only once the group has formed,
        # which takes seconds, and timing it out would restart the join forever.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            await consumer.start()
            await self._dead_letters.open()
        except (KafkaError, OSError) as exc:
            self._broker.failed(exc)
            with contextlib.suppress(Exception):
                await consumer.stop()
            return False
        listener = _Listener(self.topic, self._in_flight, settings.rebalance_wait_seconds)
        consumer.subscribe([self.topic], listener=listener)
        self._consumer = consumer
        self._broker.recovered()
        log.info("consuming", extra={"topic": self.topic, "group": self._group_id})
        return True

    async def _disconnect(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            _forget_lag(consumer.assignment())
            with contextlib.suppress(Exception):
                await consumer.stop()  # leaves the group: its partitions move at once
        await self._dead_letters.close()


def _forget_lag(partitions: set[TopicPartition]) -> None:
    for tp in partitions:
        with contextlib.suppress(KeyError):
            CONSUMER_LAG.remove(tp.topic, str(tp.partition))


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, topic: str, in_flight: asyncio.Lock, wait_seconds: float) -> None:
        self._topic = topic
        self._in_flight = in_flight
        self._wait_seconds = wait_seconds

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Let the batch in flight reach its commit while the partitions are
        # still ours; the next owner then starts right after it.
        try:
            async with asyncio.timeout(self._wait_seconds), self._in_flight:
                pass
        except TimeoutError:
            log.warning(
                "rebalance did not wait for the batch in flight; it will be read again",
                extra={"topic": self._topic},
            )
        _forget_lag(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info(
            "partitions assigned",
            extra={"topic": self._topic, "partitions": sorted(tp.partition for tp in assigned)},
        )
