"""Queries on the analytics tables. Flushes, never commits.

Writes take whole batches as arrays (``unnest``): a batch of any size is one
statement per table, and the statement text never changes, so it is
prepared once per connection. Reads touch rollups only.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    desc,
    exists,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.dml import ReturningInsert

from services.analytics.models import (
    ClicksByDimension,
    ClicksDaily,
    ClicksHourly,
    KnownLink,
    ProcessedEvent,
)
from services.chassis.arrays import Row, columns, insert_from_arrays

__all__ = [
    "EventRepository",
    "LinkRepository",
    "RollupRepository",
    "StatsRepository",
]


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, event_ids: Sequence[str]) -> set[str]:
        """Record ``event_ids`` as processed; the ones that were not already.

        The primary key decides, inside the batch's transaction: an event
        seen before (a redelivery after a crash, a duplicate publish) is not
        returned, and its batch's rollback would take the claim back too.
        """
        if not event_ids:
            return set()
        result = await self.session.execute(_claim_statement(), {"event_id": sorted(event_ids)})
        return set(result.scalars())


@functools.cache
def _claim_statement() -> ReturningInsert[Any]:
    table = ProcessedEvent.__table__
    return (
        insert_from_arrays(table, ["event_id"])  # type: ignore[arg-type]
        .on_conflict_do_nothing(index_elements=[ProcessedEvent.event_id])
        .returning(ProcessedEvent.event_id)
    )


class RollupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, table: Table, rows: Sequence[Row]) -> None:
        """Add ``(key..., clicks, bot_clicks)`` rows to the counters of ``table``."""
        if rows:
            names = [column.name for column in table.columns]
            await self.session.execute(_add_statement(table), columns(names, rows))


@functools.cache
def _add_statement(table: Table) -> Insert:
    # Keys first, then the two counters: the column order of every rollup table.
    statement = insert_from_arrays(table, [column.name for column in table.columns])
    return statement.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={
            "clicks": table.c.clicks + statement.excluded.clicks,
            "bot_clicks": table.c.bot_clicks + statement.excluded.bot_clicks,
        },
    )


class LinkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def apply(self, rows: Sequence[Row]) -> None:
        """Upsert ``(code, owner_id, deleted_at, changed_at)`` rows, one per code.

        A row older than what is stored changes nothing (events of one link
        arrive in order, but a relay may send an old one again). A deleted
        link stays deleted, and an owner is never forgotten: codes are never
        reused, and links do not change hands.
        """
        if rows:
            await self.session.execute(_apply_statement(), columns(_LINK_COLUMNS, rows))

    async def get(self, code: str) -> KnownLink | None:
        return await self.session.get(KnownLink, code)


_LINK_COLUMNS = ("code", "owner_id", "deleted_at", "changed_at")


@functools.cache
def _apply_statement() -> Insert:
    statement = insert_from_arrays(KnownLink.__table__, _LINK_COLUMNS)  # type: ignore[arg-type]
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[KnownLink.code],
        set_={
            "owner_id": func.coalesce(new.owner_id, KnownLink.owner_id),
            "deleted_at": func.coalesce(KnownLink.deleted_at, new.deleted_at),
            "changed_at": new.changed_at,
        },
        where=KnownLink.changed_at <= new.changed_at,
    )


class StatsRepository:
    """Reads for the stats API: every query is an index range scan of one link's rollups."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def hourly(self, code: str, start: datetime, end: datetime) -> Sequence[Row]:
        """``(hour, clicks, bot_clicks)`` of the hours in [start, end) that had clicks."""
        return await self._series(ClicksHourly.hour, ClicksHourly, code, start, end)

    async def daily(self, code: str, start: date, end: date) -> Sequence[Row]:
        """``(day, clicks, bot_clicks)`` of the days in [start, end) that had clicks."""
        return await self._series(ClicksDaily.day, ClicksDaily, code, start, end)

    async def _series(
        self,
        bucket: InstrumentedAttribute[Any],
        table: type[ClicksHourly] | type[ClicksDaily],
        code: str,
        start: date | datetime,
        end: date | datetime,
    ) -> Sequence[Row]:
        query = (
            select(bucket, table.clicks, table.bot_clicks)
            .where(table.code == code, bucket >= start, bucket < end)
            .order_by(bucket)
        )
        return [tuple(row) for row in await self.session.execute(query)]

    async def breakdowns(self, code: str, start: date, end: date, top: int) -> Sequence[Row]:
        """``(dimension, value, clicks, bot_clicks)``: the ``top`` values of each
        dimension in [start, end), most human clicks first."""
        t = ClicksByDimension
        clicks, bots = func.sum(t.clicks), func.sum(t.bot_clicks)
        rank = func.row_number().over(
            partition_by=t.dimension, order_by=(desc(clicks), desc(bots), t.value)
        )
        ranked = (
            select(
                t.dimension, t.value, clicks.label("clicks"), bots.label("bots"), rank.label("n")
            )
            .where(t.code == code, t.day >= start, t.day < end)
            .group_by(t.dimension, t.value)
            .subquery()
        )
        query = (
            select(ranked.c.dimension, ranked.c.value, ranked.c.clicks, ranked.c.bots)
            .where(ranked.c.n <= top)
            .order_by(ranked.c.dimension, ranked.c.n)
        )
        return [tuple(row) for row in await self.session.execute(query)]

    async def has_clicks(self, code: str) -> bool:
        query = select(exists().where(ClicksDaily.code == code))
        return bool((await self.session.execute(query)).scalar())

    async def top_for_owner(
        self, owner_id: uuid.UUID, start: date, end: date, limit: int
    ) -> Sequence[Row]:
        """``(code, clicks, bot_clicks)`` of the owner's live links with clicks in
        [start, end), most human clicks first."""
        clicks, bots = func.sum(ClicksDaily.clicks), func.sum(ClicksDaily.bot_clicks)
        query = (
            select(KnownLink.code, clicks, bots)
            .join(
                ClicksDaily,
                and_(
                    ClicksDaily.code == KnownLink.code,
                    ClicksDaily.day >= start,
                    ClicksDaily.day < end,
                ),
            )
            .where(KnownLink.owner_id == owner_id, KnownLink.deleted_at.is_(None))
            .group_by(KnownLink.code)
            .order_by(desc(clicks), desc(bots), KnownLink.code)
            .limit(limit)
        )
        return [tuple(row) for row in await self.session.execute(query)]
