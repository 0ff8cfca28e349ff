"""The transactional outbox: events committed with the change they report, then relayed.

``stage`` adds an event to the caller's transaction, so the event exists if and
only if the change commits. ``OutboxRelay`` moves pending rows to Kafka:

1. lock the oldest pending rows with ``FOR UPDATE SKIP LOCKED``, so replicas
   relaying side by side take disjoint batches instead of waiting for each
   other or sending the same rows twice;
2. send them and wait for every acknowledgement (``acks=all``);
3. mark them published in the transaction that locked them, and commit.

Published rows are kept ``LINK_OUTBOX_RETENTION_HOURS`` (48) and then
deleted by the service's janitor (services/chassis/janitor.py).

A crash between 2 and 3 sends the batch again: delivery is at-least-once and
consumers deduplicate by ``event_id``. While the broker is away the relay
retries with backoff and the rows wait in the table: requests never wait for
the broker, and nothing is lost. Rows of one key (a link code) go out in the
order they were written, even with several relays (``_held_back``), so a
partition carries each link's history in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import NamedTuple

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge
from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.chassis.config import KafkaSettings
from services.chassis.db import session_scope
from services.chassis.kafka import start_producer
from services.chassis.tasks import finish_within
from services.chassis.tracing_kafka import (
    context_of_traceparent,
    message_context,
    message_headers,
    sending,
    traceparent_of,
)
from services.link.models import OutboxMessage

__all__ = ["OutboxRelay", "StagedEvent", "stage", "staged_event"]

log = logging.getLogger(__name__)

OUTBOX_PENDING = Gauge(
    "outbox_pending",
    "Outbox events not yet acknowledged by the broker, as of the last count. "
    "Every replica counts the same table: aggregate with max, not sum.",
)
OUTBOX_PUBLISHED = Counter("outbox_published_total", "Outbox events acknowledged by the broker.")
OUTBOX_FAILURES = Counter(
    "outbox_publish_failures_total",
    "Relay rounds that failed (broker or database away); their events stay pending.",
)

BATCH_SIZE = 500
# A replica's commits wake its own relay at once, and that relay sends them;
# polls are for what no commit of this replica announces: rows of a replica
# that died before relaying them. Each poll is a transaction and a query
# (~3 ms of the service's CPU): five a second were ~1.5 % of a core all day
# long, and a redirect's latency when one fell in a poll.
POLL_INTERVAL_SECONDS = 2.0
# Rows held back for another relay's older rows of their key: that relay
# tells nobody when it is done, so they are looked at again soon.
HELD_BACK_POLL_SECONDS = 0.2
# Counting reads the whole pending index: cheap when drained, not during an outage.
COUNT_INTERVAL_SECONDS = 5.0
MIN_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS = 0.1, 5.0

OutboxRow = Row[int, str, bytes, bytes, str | None]


class StagedEvent(NamedTuple):
    """The columns of an event's outbox row, in the order of its INSERT."""

    topic: str
    key: bytes
    payload: bytes
    traceparent: str | None


def stage(session: AsyncSession, topic: str, key: bytes, payload: bytes) -> None:
    """Add an event to the session's transaction: it exists if, and only if, that commits."""
    session.add(OutboxMessage(**staged_event(topic, key, payload)._asdict()))


def staged_event(topic: str, key: bytes, payload: bytes) -> StagedEvent:
    """An event's outbox row, for ``stage`` or for a statement that inserts it itself.

    In a sampled trace, the event's creation is a span of the request, and
    its context is stored with the row for the relay to send as a header.
    """
    return StagedEvent(topic, key, payload, traceparent_of(message_context(topic)))


class OutboxRelay:
    """Relays committed outbox rows to Kafka from a background task, one per process."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: KafkaSettings,
        *,
        batch_size: int = BATCH_SIZE,
        poll_interval_seconds: float = POLL_INTERVAL_SECONDS,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._batch_size = batch_size
        self._poll_interval = poll_interval_seconds
        # An acknowledgement later than this is a failure; the rows stay locked until then.
        self._ack_timeout = 2 * settings.kafka_request_timeout_ms / 1000
        self._wakeup = asyncio.Event()
        self._stopped = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._next_count = 0.0

    def wake(self) -> None:
        """Relay now rather than at the next poll: a commit just wrote outbox rows."""
        self._wakeup.set()

    async def start(self) -> None:
        """Start relaying in the background; the broker need not be up yet."""
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, timeout_seconds: float) -> None:
        """Finish the batch in flight (within the bound), then close the producer.

        Nothing is flushed or lost here: pending rows wait in the table for the
        next relay, of this replica or another.
        """
        self._stopped.set()
        self._wakeup.set()
        # A batch cut short rolls its transaction back: its rows stay pending.
        await finish_within(self._task, timeout_seconds)
        await self._disconnect()

    async def _run(self) -> None:
        backoff = MIN_BACKOFF_SECONDS
        while not self._stopped.is_set():
            # Cleared before the poll, so a commit landing during it is not missed.
            self._wakeup.clear()
            try:
                await self._housekeeping()
                sent, held = await self._relay_batch()
            except Exception as exc:
                OUTBOX_FAILURES.inc()
                if backoff == MIN_BACKOFF_SECONDS:  # one line per outage, not per retry
                    log.warning("outbox relay failing, events wait", extra={"error": repr(exc)})
                await self._disconnect()
                # Commits do not cut a backoff short: a busy service would hammer a dead broker.
                await _pause(self._stopped, backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            if backoff > MIN_BACKOFF_SECONDS:
                log.info("outbox relay recovered")
                backoff = MIN_BACKOFF_SECONDS
            if sent < self._batch_size:  # caught up (or held back): wait for news
                wait = HELD_BACK_POLL_SECONDS if held else self._poll_interval
                await _pause(self._wakeup, wait)

    async def _relay_batch(self) -> tuple[int, bool]:
        """Send the oldest pending rows and mark them published: the number
        sent, and whether rows were held back for another relay's."""
        # Connected before locking anything: rows are not held while a handshake fails.
        producer = self._producer or await self._connect()
        async with session_scope(self._sessions) as session:
            query = (
                select(
                    OutboxMessage.id,
                    OutboxMessage.topic,
                    OutboxMessage.key,
                    OutboxMessage.payload,
                    OutboxMessage.traceparent,
                )
                .where(OutboxMessage.published_at.is_(None))
                .order_by(OutboxMessage.id)
                .limit(self._batch_size)
                .with_for_update(skip_locked=True)
            )
            rows: Sequence[OutboxRow] = (await session.execute(query)).all()
            if not rows:
                return 0, False
            held = await _held_back(session, rows)
            ready = [row for row in rows if row.id not in held]
            if not ready:
                return 0, True
            await _send(producer, ready, self._ack_timeout)
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([row.id for row in ready]))
                # The time of the acknowledgement, not of the transaction's start.
                .values(published_at=func.clock_timestamp())
            )
        OUTBOX_PUBLISHED.inc(len(ready))
        return len(ready), bool(held)

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now >= self._next_count:
            self._next_count = now + COUNT_INTERVAL_SECONDS
            async with session_scope(self._sessions) as session:
                pending = await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.published_at.is_(None))
                )
            OUTBOX_PENDING.set(pending or 0)

    async def _connect(self) -> AIOKafkaProducer:
        self._producer = await start_producer(self._settings, linger_ms=0)
        return self._producer

    async def _disconnect(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()


async def _held_back(session: AsyncSession, rows: Sequence[OutboxRow]) -> set[int]:
    """Rows of this batch that must wait: an older row of their key is elsewhere.

    SKIP LOCKED lets another relay hold older rows than ours. If one has the
    same key, sending ours now could overtake it on the partition (a link
    deleted before it is created), so ours wait for a later round. With a
    single relay this finds nothing: every older pending row is in the batch.
    """
    ids = [row.id for row in rows]
    elsewhere = await session.execute(
        select(OutboxMessage.topic, OutboxMessage.key, func.min(OutboxMessage.id))
        .where(
            OutboxMessage.published_at.is_(None),
            OutboxMessage.id < max(ids),
            OutboxMessage.id.not_in(ids),
        )
        .group_by(OutboxMessage.topic, OutboxMessage.key)
    )
    first = {(topic, key): oldest for topic, key, oldest in elsewhere}
    return {row.id for row in rows if first.get((row.topic, row.key), row.id) < row.id}


async def _send(producer: AIOKafkaProducer, rows: Sequence[OutboxRow], wait_seconds: float) -> None:
    """Send ``rows`` and wait for every acknowledgement; raise if one is missing.

    Each row's stored creation context goes out as its message's headers,
    inside one ``send`` span for the batch (services/chassis/tracing_kafka.py).
    """
    contexts = [context_of_traceparent(row.traceparent) for row in rows]
    # One topic per batch in practice (links); the span names the first row's.
    with sending(rows[0].topic, contexts):
        futures = [
            await producer.send(
                row.topic, row.payload, key=row.key, headers=message_headers(context)
            )
            for row, context in zip(rows, contexts, strict=True)
        ]
        # asyncio.wait, not wait_for(gather): a timeout must not cancel the producer's futures.
        done, pending = await asyncio.wait(futures, timeout=wait_seconds)
    if pending:
        raise TimeoutError(f"{len(pending)} events unacknowledged after {wait_seconds} s")
    for future in done:
        future.result()  # the broker's error, if it refused one


async def _pause(event: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``event`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
