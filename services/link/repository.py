"""Queries on the links table. Flushes, never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.link.models import Link

__all__ = ["LinkRepository"]


class LinkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_if_free(
        self,
        *,
        code: str,
        url: str,
        redirect_type: int,
        expires_at: datetime | None,
        owner_id: uuid.UUID | None,
        max_visits: int | None,
    ) -> Link | None:
        """Insert a link, or return None when ``code`` is taken.

        ``ON CONFLICT DO NOTHING`` lets the unique index settle races between
        two requests for the same code without an exception or a savepoint.
        """
        statement = (
            insert(Link)
            .values(
                code=code,
                url=url,
                redirect_type=redirect_type,
                expires_at=expires_at,
                owner_id=owner_id,
                max_visits=max_visits,
            )
            .on_conflict_do_nothing(index_elements=[Link.code])
            .returning(Link)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_by_code(self, code: str, *, for_update: bool = False) -> Link | None:
        """A live (not deleted) link; ``for_update`` locks it until the commit."""
        query = select(Link).where(Link.code == code, Link.deleted_at.is_(None))
        if for_update:
            query = query.with_for_update()
        return (await self.session.execute(query)).scalar_one_or_none()

    async def get_by_codes(self, codes: list[str]) -> list[Link]:
        """The live links among ``codes``, in one query (a batch's cache misses)."""
        query = select(Link).where(Link.code.in_(codes), Link.deleted_at.is_(None))
        return list((await self.session.execute(query)).scalars())

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
