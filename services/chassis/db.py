"""The database: one async engine per process, one transaction per request.

The engine and session factory are built in the lifespan and kept on
``app.state``; ``session_scope`` is the only place a transaction is opened
and committed, so repositories flush and never commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from services.chassis.config import DatabaseSettings

__all__ = ["Base", "asyncpg_url", "create_engine", "ping", "session_scope"]

# Explicit constraint names: migrations can refer to them, and an
# IntegrityError names the rule that was broken.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with the naming convention; each service has its own tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def asyncpg_url(url: str) -> str:
    """Accept the standard ``postgresql://`` URL that every tool understands."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    return url


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """An engine whose connections time out statements instead of hanging."""
    return create_async_engine(
        asyncpg_url(settings.database_url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        connect_args={
            "timeout": 5,
            "server_settings": {"statement_timeout": str(settings.db_statement_timeout_ms)},
        },
    )


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session in one transaction: committed on success, rolled back on any error."""
    async with factory() as session, session.begin():
        yield session


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a query."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
