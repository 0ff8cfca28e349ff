"""The database: one async engine per process, one transaction per request.

The engine and session factory are built in the lifespan and kept on
``app.state``; ``session_scope`` is the only place a transaction is opened
and committed, so repositories flush and never commit.

Every engine made by ``create_engine`` is watched by one collector that reads
its pool when Prometheus scrapes (``db_pool_connections{database,state}`` and
``db_pool_max_connections{database}``): nothing is paid per query.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import asyncpg
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, QueuePool

from services.chassis.config import DatabaseSettings

__all__ = [
    "DATABASE_UNAVAILABLE_WHEN",
    "LOST_CONNECTION",
    "NAMING_CONVENTION",
    "asyncpg_url",
    "create_engine",
    "database_unavailable",
    "ping",
    "session_scope",
]

# A database that cannot be reached, as SQLAlchemy and asyncpg say it: with
# OSError and TimeoutError, answered 503 (services/chassis/errors.py); a
# service with a database hands them to ``build_app``.
LOST_CONNECTION: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
)
# SQLSTATEs that say the same through a generic error: class 08 (connection
# exception) and 57P (the server shutting down, crashed, starting up or in
# recovery: "the database system is not yet accepting connections", 57P03);
# and 57014, a query cancelled (by the statement timeout, or by an operator):
# no query a client can cause runs that long on a healthy database, so the
# moment is at fault, not the request, and a retry may well succeed.
_UNAVAILABLE_STATES = ("08", "57P", "57014")


def database_unavailable(exc: Exception) -> bool:
    """Whether ``exc`` means the database cannot serve this request now
    (out of reach, or too slow: the statement timeout), whatever wraps it.

    SQLAlchemy hands asyncpg's errors on as a generic ``DBAPIError`` unless
    it knows them (asyncpg's ``CannotConnectNowError`` while Postgres
    recovers from a crash, its ``QueryCanceledError``), so the types in
    ``LOST_CONNECTION`` miss them; their SQLSTATE does not.
    """
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    raised = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(raised, "sqlstate", None)
    return isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES)


# For build_app: a DBAPIError is a 503 when ``database_unavailable`` says so.
DATABASE_UNAVAILABLE_WHEN: tuple[type[Exception], Callable[[Exception], bool]] = (
    DBAPIError,
    database_unavailable,
)


# Explicit constraint names: migrations can refer to them, and an
# IntegrityError names the rule that was broken.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def asyncpg_url(url: str) -> str:
    """Accept the standard ``postgresql://`` URL that every tool understands."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url.removeprefix(prefix)
    return url


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """An engine whose connections time out statements instead of hanging."""
    engine = create_async_engine(
        asyncpg_url(settings.database_url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        connect_args={
            "timeout": 5,
            "server_settings": {"statement_timeout": str(settings.db_statement_timeout_ms)},
        },
    )
    event.listen(engine.sync_engine.pool, "checkout", _discard_if_closed)
    _POOLS.watch(engine, settings.db_pool_size + settings.db_max_overflow)
    return engine


def _discard_if_closed(
    dbapi_connection: object, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    """Hand out no connection that the server closed while it sat in the pool.

    Postgres closes its connections when it restarts or a backend is
    terminated; the event loop reads that end of the socket as it happens, so
    asyncpg knows the connection is closed without asking. Raising
    ``DisconnectionError`` here makes the pool drop it and check out another
    (SQLAlchemy's documented custom pessimistic check). ``pool_pre_ping``
    asked the server instead: three round trips per checkout with asyncpg
    (BEGIN, ``;``, ROLLBACK), 15 % of the link service's CPU per creation.
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("closed by the server while pooled")


@asynccontextmanager
async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session in one transaction: committed on success, rolled back on any error."""
    async with factory() as session, session.begin():
        yield session


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a query."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


class PoolCollector(Collector):
    """Reads the pools of live engines at scrape time.

    ``in_use`` near ``db_pool_max_connections`` means requests are about to
    queue for a connection; ``overflow`` above zero means the pool has grown
    past ``DB_POOL_SIZE`` and is borrowing from ``DB_MAX_OVERFLOW``.
    """

    def __init__(self) -> None:
        # Weak: an engine that is disposed of and dropped leaves the scrape with it.
        self._engines: weakref.WeakKeyDictionary[AsyncEngine, int] = weakref.WeakKeyDictionary()

    def watch(self, engine: AsyncEngine, max_connections: int) -> None:
        self._engines[engine] = max_connections

    def collect(self) -> Iterator[Metric]:
        connections = GaugeMetricFamily(
            "db_pool_connections",
            "Connections of the database pool, by state (in_use, idle, overflow).",
            labels=["database", "state"],
        )
        ceiling = GaugeMetricFamily(
            "db_pool_max_connections",
            "Connections the pool may open at most (DB_POOL_SIZE + DB_MAX_OVERFLOW).",
            labels=["database"],
        )
        for engine, max_connections in list(self._engines.items()):
            pool = engine.sync_engine.pool
            if not isinstance(pool, QueuePool):
                continue
            database = engine.url.database or "unknown"
            connections.add_metric([database, "in_use"], pool.checkedout())
            connections.add_metric([database, "idle"], pool.checkedin())
            # overflow() counts down from -size while the pool fills: only
            # a positive value is borrowed connections.
            connections.add_metric([database, "overflow"], max(pool.overflow(), 0))
            ceiling.add_metric([database], max_connections)
        yield connections
        yield ceiling


_POOLS = PoolCollector()
REGISTRY.register(_POOLS)
