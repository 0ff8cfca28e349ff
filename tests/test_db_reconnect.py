"""A pooled connection that Postgres closed is replaced at checkout, with no error.

Postgres closes its connections when it restarts or terminates a backend.
The chassis's engines notice at checkout without a round trip
(services/chassis/db.py); an engine without that check hands the dead
connection to the next query, which fails: the control case shows the test
can fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.chassis.config import DatabaseSettings
from services.chassis.db import asyncpg_url, create_engine
from tests.conftest import Infra


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(infra: Infra, pid: int) -> None:
    """Terminate one backend, and wait until it is gone."""
    admin = await asyncpg.connect(infra.link_database_url)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        for _ in range(200):  # bounded: 2 s
            if not await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
            ):
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the backend outlived its termination")
    finally:
        await admin.close()


@pytest.fixture
async def engine(infra: Infra) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(DatabaseSettings(database_url=infra.link_database_url, db_pool_size=1))
    yield engine
    await engine.dispose()


async def test_a_terminated_pooled_connection_is_replaced(
    infra: Infra, engine: AsyncEngine
) -> None:
    first = await _backend_pid(engine)
    await _terminate(infra, first)
    await asyncio.sleep(0.05)  # the loop reads the closed socket
    second = await _backend_pid(engine)  # no error: a new connection
    assert second != first


async def test_without_the_check_the_next_query_fails(infra: Infra) -> None:
    plain = create_async_engine(asyncpg_url(infra.link_database_url), pool_size=1)
    try:
        pid = await _backend_pid(plain)
        await _terminate(infra, pid)
        await asyncio.sleep(0.05)
        with pytest.raises((DBAPIError, asyncpg.PostgresError, ConnectionError)):
            await _backend_pid(plain)
    finally:
        await plain.dispose()
