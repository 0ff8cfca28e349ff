"""Deleting rows nobody needs any more, in the background, in small batches.

A table that grows by one row per click (``processed_events``) or per login
(``refresh_tokens``) and is never pruned slows every write that checks it
and fills the disk. Each service names what is old enough to go with one
``DELETE`` that removes at most ``:batch`` rows older than ``:cutoff``; the
janitor runs it every ``interval`` until a batch finds nothing, each batch
its own short transaction, so no lock is held for long and no vacuum has a
huge backlog at once.

Replicas share the database: a batch runs only under a transaction-level
advisory lock named after the table, so two replicas never delete side by
side (one skips its turn), and a crash releases the lock with the
connection.

Metrics: ``db_rows_pruned_total{table}``, ``db_prune_runs_total{table,result}``
(``done``, ``skipped``: another replica held the lock, ``failed``) and
``db_prune_last_success_timestamp_seconds{table}``, which the
``PruningStalled`` alert watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Gauge
from sqlalchemy import TextClause, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.chassis.config import PruneSettings
from services.chassis.tasks import finish_within

__all__ = ["Janitor"]

log = logging.getLogger(__name__)

ROWS_PRUNED = Counter("db_rows_pruned_total", "Rows deleted by a janitor, by table.", ["table"])
PRUNE_RUNS = Counter(
    "db_prune_runs_total", "Janitor runs, by table and result.", ["table", "result"]
)
LAST_SUCCESS = Gauge(
    "db_prune_last_success_timestamp_seconds",
    "When a janitor last finished pruning its table (Unix time).",
    ["table"],
)
_LOCK = text("SELECT pg_try_advisory_xact_lock(:key)")


class Janitor:
    """Runs ``statement`` (a batched ``DELETE`` taking ``:cutoff`` and ``:batch``)
    every ``interval_seconds`` until a batch deletes nothing."""

    def __init__(
        self,
        table: str,
        engine: AsyncEngine,
        statement: TextClause,
        *,
        keep: timedelta,
        interval_seconds: float,
        batch_rows: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.table = table
        self.engine = engine
        self.statement = statement
        self.keep = keep
        self.interval_seconds = interval_seconds
        self.batch_rows = batch_rows
        self._now = now
        # The advisory lock's key: the same in every replica, one per table.
        self._key = zlib.crc32(f"janitor:{table}".encode())
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        LAST_SUCCESS.labels(table)  # exported from the start, as 0 until a first run

    @classmethod
    def for_settings(
        cls,
        table: str,
        engine: AsyncEngine,
        statement: TextClause,
        *,
        keep_hours: float,
        settings: PruneSettings,
    ) -> Janitor:
        return cls(
            table,
            engine,
            statement,
            keep=timedelta(hours=keep_hours),
            interval_seconds=settings.prune_interval_seconds,
            batch_rows=settings.prune_batch_rows,
        )

    async def run_once(self) -> int | None:
        """Delete what is old enough, batch after batch; the rows deleted, or
        None when another replica holds the lock."""
        cutoff = self._now() - self.keep
        deleted = 0
        while not self._stopping.is_set():
            async with self.engine.begin() as conn:
                locked = (await conn.execute(_LOCK, {"key": self._key})).scalar_one()
                if not locked:
                    PRUNE_RUNS.labels(self.table, "skipped").inc()
                    return None
                params = {"cutoff": cutoff, "batch": self.batch_rows}
                batch = (await conn.execute(self.statement, params)).rowcount
            deleted += batch
            ROWS_PRUNED.labels(self.table).inc(batch)
            if batch == 0:
                break
        PRUNE_RUNS.labels(self.table, "done").inc()
        LAST_SUCCESS.labels(self.table).set(time.time())
        if deleted:
            log.info("pruned", extra={"table": self.table, "rows": deleted})
        return deleted

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name=f"janitor-{self.table}")

    async def stop(self, timeout_seconds: float) -> None:
        self._stopping.set()
        await finish_within(self._task, timeout_seconds)

    async def _run_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except (SQLAlchemyError, OSError) as exc:
                # The database is away: the next turn tries again; the alert
                # on the last success says when that has gone on too long.
                PRUNE_RUNS.labels(self.table, "failed").inc()
                log.warning("pruning failed", extra={"table": self.table, "error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_seconds)
