"""Queries on the links table. Flushes, never commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.link.models import Link

__all__ = ["LinkRepository"]


class LinkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_if_free(
        self, *, code: str, url: str, redirect_type: int, expires_at: datetime | None
    ) -> Link | None:
        """Insert a link, or return None when ``code`` is taken.

        ``ON CONFLICT DO NOTHING`` lets the unique index settle races between
        two requests for the same code without an exception or a savepoint.
        """
        statement = (
            insert(Link)
            .values(code=code, url=url, redirect_type=redirect_type, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=[Link.code])
            .returning(Link)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_by_code(self, code: str) -> Link | None:
        return (
            await self.session.execute(select(Link).where(Link.code == code))
        ).scalar_one_or_none()
