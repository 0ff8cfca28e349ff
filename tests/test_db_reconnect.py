"""A pooled connection that Postgres closed is replaced at checkout, with no error;
a Postgres that cannot take connections yet, or does not answer within the
statement timeout, is a 503, whatever wraps its error.

Postgres closes its connections when it restarts or terminates a backend.
The chassis's engines notice at checkout without a round trip
(services/chassis/db.py); an engine without that check hands the dead
connection to the next query, which fails: the control case shows the test
can fail.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.chassis.config import DatabaseSettings
from services.chassis.db import (
    DATABASE_UNAVAILABLE_WHEN,
    LOST_CONNECTION,
    asyncpg_url,
    create_engine,
    database_unavailable,
)
from services.chassis.errors import install_error_handlers
from services.link.batch import handler_for
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


async def _not_yet_accepting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A Postgres recovering from a crash, as the client sees it: the startup
    message (after refusing SSL) is answered FATAL 57P03."""
    for _ in range(2):  # SSLRequest, then StartupMessage
        length = struct.unpack("!I", await reader.readexactly(4))[0]
        if struct.unpack("!I", (await reader.readexactly(length - 4))[:4])[0] != _SSL_REQUEST:
            break
        writer.write(b"N")
    fields = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is not yet accepting connections\0\0"
    writer.write(b"E" + struct.pack("!I", len(fields) + 4) + fields)
    await writer.drain()
    writer.close()


_SSL_REQUEST = 80877103


async def test_a_database_not_yet_accepting_connections_is_a_503_not_a_500() -> None:
    """SQLAlchemy hands asyncpg's CannotConnectNowError on as a generic
    DBAPIError: the services' error handlers must still see a lost database
    (the chaos suite's kill-postgres found it answered 500 while Postgres
    recovered)."""
    server = await asyncio.start_server(_not_yet_accepting, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    engine = create_async_engine(f"postgresql+asyncpg://link:link@127.0.0.1:{port}/link")
    try:
        with pytest.raises(DBAPIError) as raised:
            await _backend_pid(engine)
    finally:
        await engine.dispose()
        server.close()
    assert not isinstance(raised.value, LOST_CONNECTION)  # its type alone would miss it
    assert database_unavailable(raised.value)
    await _assert_answered_503(raised.value)


async def test_a_query_cancelled_by_the_statement_timeout_is_a_503_not_a_500(
    infra: Infra,
) -> None:
    """A database too slow to answer within the bound is the moment's fault,
    not the request's: 503 with Retry-After, as a lost connection."""
    slow = create_engine(
        DatabaseSettings(database_url=infra.link_database_url, db_statement_timeout_ms=50)
    )
    try:
        async with slow.connect() as connection:
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(text("SELECT pg_sleep(2)"))
    finally:
        await slow.dispose()
    assert getattr(raised.value.orig, "sqlstate", None) == "57014"
    assert database_unavailable(raised.value)
    await _assert_answered_503(raised.value)


async def _assert_answered_503(error: DBAPIError) -> None:
    """The services' error handlers answer ``error`` 503, and a DBAPIError
    that says nothing of the database's state still 500."""
    app = FastAPI()
    install_error_handlers(app, LOST_CONNECTION, DATABASE_UNAVAILABLE_WHEN)

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise error

    @app.get("/bug")
    async def bug() -> None:
        raise DBAPIError("SELECT 1", None, ValueError("not a connection error"))

    # Handled inside the app, where a batch of redirects looks its handlers up
    # (services/link/batch.py), not by the outermost catch-all.
    handlers: Any = app.exception_handlers  # Starlette types them loosely
    assert handler_for(handlers, error) is not None
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.get("/unavailable")
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "dependency_unavailable"
        assert answer.headers["retry-after"]
        assert (await client.get("/bug")).status_code == 500
