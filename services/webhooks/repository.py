"""Queries on endpoints and on what the service knows of links; flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

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
        query = select(Endpoint).where(
            Endpoint.owner_id.in_(owner_ids),
            Endpoint.enabled,
            Endpoint.event_types.contains([event_type]),
        )
        return (await self.session.scalars(query)).all()


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
        query = select(LinkOwner.code, LinkOwner.owner_id).where(LinkOwner.code.in_(codes))
        rows = (await self.session.execute(query)).all()
        return {row.code: row.owner_id for row in rows}

    async def learn(self, rows: Sequence[tuple[str, uuid.UUID | None, datetime]]) -> None:
        """Upsert (code, owner, when); an older change never overwrites a newer one."""
        if not rows:
            return
        statement = insert(LinkOwner).values(
            [{"code": c, "owner_id": o, "changed_at": at} for c, o, at in rows]
        )
        excluded = statement.excluded
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[LinkOwner.code],
                set_={"owner_id": excluded.owner_id, "changed_at": excluded.changed_at},
                where=LinkOwner.changed_at <= excluded.changed_at,
            )
        )

    async def park(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            statement = insert(ParkedClick).values(list(rows))
            await self.session.execute(statement.on_conflict_do_nothing())

    async def unpark(self, codes: Sequence[str]) -> Sequence[ParkedClick]:
        """Take the parked clicks of ``codes`` (their owners are now known)."""
        if not codes:
            return []
        statement = delete(ParkedClick).where(ParkedClick.code.in_(codes)).returning(ParkedClick)
        return (await self.session.scalars(statement)).all()
