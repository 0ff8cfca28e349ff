"""Queries on endpoints and on what the service knows of links; flush, never commit."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, Uuid, bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningDelete

from services.chassis.arrays import any_of, columns, insert_from_arrays
from services.webhooks.models import Endpoint, LinkOwner, ParkedClick

__all__ = ["EndpointRepository", "LinkRepository"]

# Two-key advisory locks, the first key naming the kind: codes of links.
_LOCK_CODES = text(
    "SELECT count(pg_advisory_xact_lock(18, hashtext(code)))"
    " FROM (SELECT unnest(CAST(:codes AS text[])) AS code ORDER BY 1) AS codes"
)


class EndpointRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, endpoint: Endpoint) -> Endpoint:
        self.session.add(endpoint)
        await self.session.flush()
        await self.session.refresh(endpoint)
        return endpoint

    async def get(self, owner_id: uuid.UUID, endpoint_id: uuid.UUID) -> Endpoint | None:
        found = await self.session.get(Endpoint, endpoint_id)
        return found if found is not None and found.owner_id == owner_id else None

    async def of_owner(self, owner_id: uuid.UUID) -> Sequence[Endpoint]:
        query = select(Endpoint).where(Endpoint.owner_id == owner_id).order_by(Endpoint.created_at)
        return (await self.session.scalars(query)).all()

    async def count(self, owner_id: uuid.UUID) -> int:
        query = select(func.count()).select_from(Endpoint).where(Endpoint.owner_id == owner_id)
        return int(await self.session.scalar(query) or 0)

    async def delete(self, endpoint: Endpoint) -> None:
        await self.session.delete(endpoint)
        await self.session.flush()

    async def subscribed(
        self, owner_ids: Sequence[uuid.UUID], event_type: str
    ) -> Sequence[Endpoint]:
        """The enabled endpoints of these owners that take ``event_type``."""
        if not owner_ids:
            return []
        params = {"owners": list(owner_ids), "event_type": [event_type]}
        return (await self.session.scalars(_subscribed_statement(), params)).all()


class LinkRepository:
    """Link owners learned from the ``links`` topic, and clicks waiting for theirs."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock(self, codes: Sequence[str]) -> None:
        """Hold these codes until the transaction ends, always in the same order.

        Parking a click and learning its link's owner run in two consumers'
        transactions. Unserialised, each misses the other's uncommitted row:
        the click parks as the owner arrives, the owner's unpark finds no
        click, and the click waits for nothing. Whoever holds a code first
        commits first, and the other then sees it.
        """
        if codes:
            await self.session.execute(_LOCK_CODES, {"codes": sorted(set(codes))})

    async def owners(self, codes: Sequence[str]) -> dict[str, uuid.UUID | None]:
        """The known codes among ``codes``, with their owner (None: anonymous)."""
        if not codes:
            return {}
        rows = (await self.session.execute(_owners_statement(), {"codes": list(codes)})).all()
        return {row.code: row.owner_id for row in rows}

    async def learn(self, rows: Sequence[tuple[str, uuid.UUID | None, datetime]]) -> None:
        """Upsert (code, owner, when); an older change never overwrites a newer one."""
        if rows:
            await self.session.execute(_learn_statement(), columns(_OWNER_COLUMNS, rows))

    async def park(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            statement = insert(ParkedClick).values(list(rows))
            await self.session.execute(statement.on_conflict_do_nothing())

    async def unpark(self, codes: Sequence[str]) -> Sequence[ParkedClick]:
        """Take the parked clicks of ``codes`` (their owners are now known)."""
        if not codes:
            return []
        parked = await self.session.scalars(_unpark_statement(), {"codes": list(codes)})
        return parked.all()


# Statements whose text is the same for any number of codes or rows
# (services/chassis/arrays.py): compiled and prepared once, not per batch.
_OWNER_COLUMNS = ("code", "owner_id", "changed_at")


@functools.cache
def _owners_statement() -> Select[str, uuid.UUID | None]:
    return select(LinkOwner.code, LinkOwner.owner_id).where(
        any_of(LinkOwner.code, "codes", String())
    )


@functools.cache
def _learn_statement() -> Insert:
    statement = insert_from_arrays(LinkOwner.__table__, _OWNER_COLUMNS)  # type: ignore[arg-type]
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[LinkOwner.code],
        set_={"owner_id": excluded.owner_id, "changed_at": excluded.changed_at},
        where=LinkOwner.changed_at <= excluded.changed_at,
    )


@functools.cache
def _unpark_statement() -> ReturningDelete[ParkedClick]:
    return (
        delete(ParkedClick)
        .where(any_of(ParkedClick.code, "codes", String()))
        .returning(ParkedClick)
    )


@functools.cache
def _subscribed_statement() -> Select[Endpoint]:
    return select(Endpoint).where(
        any_of(Endpoint.owner_id, "owners", Uuid()),
        Endpoint.enabled,
        Endpoint.event_types.contains(bindparam("event_type", type_=ARRAY(String()))),
    )
