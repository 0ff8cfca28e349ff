"""Queries on the links table.

``LinkRepository`` works in the caller's session: it flushes, never commits.
``insert_with_event`` and ``live_links`` are the exceptions: one statement
each on an autocommit connection, a transaction of its own (ADR 0014).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg
from sqlalchemy import Row, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.link.models import Link
from services.link.outbox import StagedEvent

__all__ = ["LinkRepository", "insert_with_event", "live_links"]

# Written out rather than built with SQLAlchemy's expression language: a
# creation is the one write on a path measured against a floor, and building,
# compiling and adapting the result of this statement took a quarter of the
# link service's CPU per creation (docs/performance.md).
_INSERT_WITH_EVENT = """
WITH new AS (
    INSERT INTO links (code, url, redirect_type, expires_at, owner_id, max_visits)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (code) DO NOTHING
    RETURNING id, code, url, redirect_type, created_at, expires_at, owner_id,
              deleted_at, max_visits, visits
), staged AS (
    INSERT INTO outbox (topic, key, payload, traceparent)
    SELECT $7::text, $8::bytea, $9::bytea, $10::text FROM new
)
SELECT * FROM new
"""

# What the resolver caches of a link (resolver._entry), for the codes a
# lookup missed: one statement, where the ORM's session took three (BEGIN,
# the SELECT, COMMIT) and built a Link per row.
_LIVE_LINKS = """
SELECT code, url, redirect_type, expires_at, max_visits, visits
FROM links
WHERE code = ANY($1::text[]) AND deleted_at IS NULL
"""


async def _driver(connection: AsyncConnection) -> asyncpg.Connection:
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    return driver


async def live_links(connection: AsyncConnection, codes: Sequence[str]) -> list[asyncpg.Record]:
    """The live (not deleted) links among ``codes``: the columns ``resolver._entry`` reads."""
    driver = await _driver(connection)
    return await driver.fetch(_LIVE_LINKS, list(codes))


async def insert_with_event(
    connection: AsyncConnection, link: Link, event: StagedEvent
) -> Link | None:
    """Insert ``link`` and the outbox row of its creation, or neither when its code is taken.

    One statement, so one transaction on its own: the event row is inserted
    from the link's ``RETURNING``, so it exists if and only if the link does.
    ``ON CONFLICT DO NOTHING`` lets the unique index settle two requests for
    one code without an exception. One round trip, where the ORM took four
    (BEGIN, the link, the event, COMMIT).
    """
    driver = await _driver(connection)
    row = await driver.fetchrow(
        _INSERT_WITH_EVENT,
        link.code,
        link.url,
        link.redirect_type,
        link.expires_at,
        link.owner_id,
        link.max_visits,
        *event,
    )
    return None if row is None else Link(**dict(row.items()))


class LinkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_code(self, code: str, *, for_update: bool = False) -> Link | None:
        """A live (not deleted) link; ``for_update`` locks it until the commit."""
        query = select(Link).where(Link.code == code, Link.deleted_at.is_(None))
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def count_visit(self, code: str) -> Row[str, int, datetime | None] | None:
        """Count one visit of a live, unexpired link still under its limit.

        One statement: the row lock Postgres takes for the UPDATE serialises
        racing visitors, and each re-checks ``visits < max_visits`` after the
        previous one committed, so exactly ``max_visits`` of them get a row
        back, however many race. None when the visit must be refused.
        """
        statement = (
            update(Link)
            .where(
                Link.code == code,
                Link.deleted_at.is_(None),
                or_(Link.expires_at.is_(None), Link.expires_at > func.now()),
                or_(Link.max_visits.is_(None), Link.visits < Link.max_visits),
            )
            .values(visits=Link.visits + 1)
            .returning(Link.url, Link.redirect_type, Link.expires_at)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(statement)).one_or_none()

    async def list_by_owner(
        self, owner_id: uuid.UUID, *, before_id: int | None, limit: int
    ) -> Sequence[Link]:
        """A page of the owner's live links, newest first (keyset pagination)."""
        query = select(Link).where(Link.owner_id == owner_id, Link.deleted_at.is_(None))
        if before_id is not None:
            query = query.where(Link.id < before_id)
        query = query.order_by(Link.id.desc()).limit(limit)
        return (await self.session.execute(query)).scalars().all()
