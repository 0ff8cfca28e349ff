"""The outbox relay hears other replicas' commits (Postgres NOTIFY) instead of
polling for them five times a second, and polls again when it cannot hear."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from infra.devstack.processes import ensure_database
from infra.devstack.stack import database_url
from services.chassis import listen
from services.chassis.config import KafkaSettings
from services.chassis.db import asyncpg_url, session_scope
from services.chassis.events import LINKS_TOPIC
from services.chassis.migrations import upgrade
from services.link import outbox
from services.link.outbox import OutboxRelay, stage
from tests.conftest import Infra
from tests.test_outbox import LINK_MIGRATIONS, alias, changed, pending
from tests.test_url_migration import downgrade

# Far beyond each test's wait: an event published in time was announced.
NEVER = 60.0


@pytest.fixture
def database(infra: Infra) -> str:
    ensure_database(infra.ports.postgres, "link_listen", "link_listen", "link_listen")
    url = database_url(infra.ports, "link_listen")
    upgrade(LINK_MIGRATIONS, url)
    return url


@asynccontextmanager
async def relaying(
    infra: Infra, url: str, *, listen: bool, deaf_poll: float = NEVER
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A relay that polls every ``deaf_poll`` seconds while it cannot listen
    (never, by default), and sessions of another replica: their commits never
    wake the relay directly."""
    kafka = KafkaSettings(kafka_bootstrap_servers=infra.bootstrap, kafka_enable_idempotence=False)
    engine = create_async_engine(asyncpg_url(url))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    relay = OutboxRelay(
        sessions, kafka, poll_interval_seconds=deaf_poll, listen_url=url if listen else None
    )
    await relay.start()
    try:
        if listen:
            await until(lambda: listening(url, 1), "the relay never listened")
        await asyncio.sleep(0.5)  # its first poll is over: it waits
        yield sessions
    finally:
        await relay.stop(5)
        await engine.dispose()


# The sessions that listen on this test's database (the session's own link
# service listens on another).
LISTENERS = (
    "SELECT pid FROM pg_stat_activity "
    "WHERE datname = current_database() AND query LIKE 'LISTEN %outbox%'"
)


async def listening(url: str, count: int) -> bool:
    connection = await asyncpg.connect(url)
    try:
        return len(await connection.fetch(LISTENERS)) == count
    finally:
        await connection.close()


async def until(condition: Callable[[], Awaitable[bool]], failure: str) -> None:
    deadline = time.monotonic() + 5
    while not await condition():
        assert time.monotonic() < deadline, failure
        await asyncio.sleep(0.05)


async def commit_event(sessions: async_sessionmaker[AsyncSession], code: str) -> None:
    async with session_scope(sessions) as session:
        event = changed(code, f"https://example.com/{code}")
        stage(session, LINKS_TOPIC, event.key(), event.to_json())


async def published(sessions: async_sessionmaker[AsyncSession], code: str) -> bool:
    return await pending(sessions, code) == 0


def test_another_replicas_commit_is_relayed_at_once(
    infra: Infra, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "LISTENING_POLL_SECONDS", NEVER)

    async def scenario() -> None:
        async with relaying(infra, database, listen=True) as sessions:
            code = alias()
            await commit_event(sessions, code)
            await until(lambda: published(sessions, code), "the commit was never heard")

    asyncio.run(scenario())


def test_a_relay_that_does_not_listen_waits_for_its_poll(infra: Infra, database: str) -> None:
    """The control: the same commit, no listener, stays pending until the next poll."""

    async def scenario() -> None:
        async with relaying(infra, database, listen=False) as sessions:
            code = alias()
            await commit_event(sessions, code)
            await asyncio.sleep(2)
            assert await pending(sessions, code) == 1

    asyncio.run(scenario())


def test_a_lost_listening_connection_is_polled_around_then_restored(
    infra: Infra, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "LISTENING_POLL_SECONDS", NEVER)
    monkeypatch.setattr(listen, "RETRY_SECONDS", 1.0)

    async def scenario() -> None:
        async with relaying(infra, database, listen=True, deaf_poll=0.2) as sessions:
            admin = await asyncpg.connect(database)
            try:
                await admin.execute(f"SELECT pg_terminate_backend(pid) FROM ({LISTENERS}) AS l")
            finally:
                await admin.close()
            await until(lambda: listening(database, 0), "the listener was not stopped")
            # Nobody hears this commit: the relay, told of the loss, polls.
            code = alias()
            await commit_event(sessions, code)
            await until(lambda: published(sessions, code), "nothing polled while deaf")
            await until(lambda: listening(database, 1), "the relay never listened again")
            again = alias()
            await commit_event(sessions, again)
            await until(lambda: published(sessions, again), "the new connection hears nothing")

    asyncio.run(scenario())


def test_the_trigger_goes_with_its_migration(infra: Infra) -> None:
    ensure_database(infra.ports.postgres, "link_trigger", "link_trigger", "link_trigger")
    url = database_url(infra.ports, "link_trigger")
    upgrade(LINK_MIGRATIONS, url)

    async def triggers() -> list[str]:
        connection = await asyncpg.connect(url)
        try:
            rows = await connection.fetch(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'outbox'::regclass"
            )
            return [row["tgname"] for row in rows]
        finally:
            await connection.close()

    assert asyncio.run(triggers()) == ["outbox_notify"]
    downgrade(url, "0006")
    assert asyncio.run(triggers()) == []
    upgrade(LINK_MIGRATIONS, url)
    assert asyncio.run(triggers()) == ["outbox_notify"]
