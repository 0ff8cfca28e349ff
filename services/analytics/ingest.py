"""What a consumed batch does to the tables: each one transaction, each event once.

Both writers start the same way: claim the batch's event ids in
``processed_events`` and apply only the events whose claim is new. Claim and
counters commit together, so an event is either claimed and counted or
neither, and a batch delivered again (after a crash, a rebalance, a failed
offset commit) changes nothing the second time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.analytics.classify import AgentClassifier
from services.analytics.metrics import DUPLICATES_SKIPPED, EVENTS_COUNTED, LINK_CHANGES_APPLIED
from services.analytics.models import ClicksByDimension, ClicksDaily, ClicksHourly
from services.analytics.repository import EventRepository, LinkRepository, RollupRepository
from services.analytics.rollup import Rollup, classify_clicks
from services.analytics.visitors import UniqueVisitors
from services.chassis.db import session_scope
from services.chassis.decoding import Click, LinkChange
from services.chassis.events import CLICKS_TOPIC, LINKS_TOPIC

__all__ = ["ClickCounter", "LinkChangeWriter"]

E = TypeVar("E", Click, LinkChange)

_HOURLY: Table = ClicksHourly.__table__  # type: ignore[assignment]
_DAILY: Table = ClicksDaily.__table__  # type: ignore[assignment]
_BY_DIMENSION: Table = ClicksByDimension.__table__  # type: ignore[assignment]


def _first_of_each(events: Sequence[E]) -> list[E]:
    """The batch without repeated event ids (a producer's retry can put both in one batch)."""
    first: dict[str, E] = {}
    for event in events:
        first.setdefault(event.event_id, event)
    return list(first.values())


class ClickCounter:
    """Counts batches of clicks into the rollups, exactly once per event."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        classifier: AgentClassifier,
        visitors: UniqueVisitors,
    ) -> None:
        self.sessions = sessions
        self.classifier = classifier
        self.visitors = visitors

    async def write(self, batch: Sequence[Click]) -> None:
        """Add the batch's new clicks to every rollup, in one transaction."""
        clicks = _first_of_each(batch)
        # Parsing User-Agents is CPU work: off the event loop, and before the
        # transaction, which then holds its connection only for the writes.
        classified = await asyncio.to_thread(classify_clicks, clicks, self.classifier)
        # Before the transaction and for every click: adding a visitor again
        # changes nothing, so even a crash right after the commit below cannot
        # leave a counted click's visitor unrecorded.
        await self.visitors.add(classified)
        async with session_scope(self.sessions) as session:
            fresh = await EventRepository(session).claim([c.event_id for c in classified])
            rollup = Rollup.of(c for c in classified if c.event_id in fresh)
            rollups = RollupRepository(session)
            await rollups.add(_HOURLY, Rollup.rows(rollup.hourly))
            await rollups.add(_DAILY, Rollup.rows(rollup.daily))
            await rollups.add(_BY_DIMENSION, Rollup.rows(rollup.by_dimension))
        # Counted once committed, so the metrics say what the tables hold.
        EVENTS_COUNTED.labels("human").inc(rollup.humans)
        EVENTS_COUNTED.labels("bot").inc(rollup.bots)
        DUPLICATES_SKIPPED.labels(CLICKS_TOPIC).inc(len(batch) - len(fresh))


class LinkChangeWriter:
    """Keeps the ``links`` table (owner, deletion) in step with ``LinkChanged`` events."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def write(self, batch: Sequence[LinkChange]) -> None:
        """Apply the batch's new changes, the latest per link, in one transaction."""
        changes = _first_of_each(batch)
        async with session_scope(self.sessions) as session:
            fresh = await EventRepository(session).claim([c.event_id for c in changes])
            # One row per code: an upsert cannot touch a row twice. Events of
            # one link share a partition, so batch order is their order.
            latest: dict[str, LinkChange] = {}
            for change in changes:
                if change.event_id in fresh:
                    known = latest.get(change.code)
                    if known is None or change.occurred_at >= known.occurred_at:
                        latest[change.code] = change
            await LinkRepository(session).apply(
                [
                    (c.code, c.owner_id, c.deleted_at, c.occurred_at)
                    for c in sorted(latest.values(), key=lambda c: c.code)
                ]
            )
        for change in changes:
            if change.event_id in fresh:
                LINK_CHANGES_APPLIED.labels(change.type).inc()
        DUPLICATES_SKIPPED.labels(LINKS_TOPIC).inc(len(batch) - len(fresh))
