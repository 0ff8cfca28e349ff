"""Pruning what nobody needs any more (services/chassis/janitor.py), on real Postgres.

Each test migrates a database of its own with the service's real
migrations and runs the service's real ``DELETE``: old claims go and recent
ones stay; a login's refresh tokens go only once the newest has expired;
a replica holding the lock makes the others skip; the running analytics
service prunes from its start.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infra.devstack.processes import ensure_database, run_once
from infra.devstack.stack import database_url
from services.analytics.pruning import PRUNE_PROCESSED_EVENTS
from services.chassis.db import asyncpg_url
from services.chassis.janitor import Janitor
from services.link.pruning import PRUNE_OUTBOX
from services.user.pruning import PRUNE_REFRESH_TOKENS
from tests.conftest import Infra, settings_for

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


async def _database(infra: Infra, name: str, service: str) -> AsyncEngine:
    await asyncio.to_thread(ensure_database, infra.ports.postgres, name, name, name)
    url = database_url(infra.ports, name)
    # In a process of its own, as everywhere: a migration loads its service's
    # models, and two services' models do not share one process.
    env = settings_for(infra, service, getattr(infra.ports, service), database_url=url)
    await asyncio.to_thread(run_once, ["-m", f"services.{service}", "migrate"], env)
    return create_async_engine(asyncpg_url(url))


@pytest.fixture
async def analytics_db(infra: Infra) -> AsyncIterator[AsyncEngine]:
    engine = await _database(infra, "janitor_analytics", "analytics")
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE processed_events"))
    yield engine
    await engine.dispose()


async def _claim(engine: AsyncEngine, count: int, age: timedelta) -> None:
    rows = [{"id": uuid.uuid4().hex, "at": NOW - age} for _ in range(count)]
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO processed_events (event_id, processed_at) VALUES (:id, :at)"), rows
        )


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


def _janitor(
    engine: AsyncEngine,
    table: str = "processed_events",
    statement: TextClause = PRUNE_PROCESSED_EVENTS,
    keep: timedelta = WEEK,
) -> Janitor:
    """A janitor whose clock says NOW, in batches of 5, every 0.05 s."""
    return Janitor(
        table, engine, statement, keep=keep, interval_seconds=0.05, batch_rows=5, now=lambda: NOW
    )


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_claims_older_than_the_retention_go_in_batches_and_recent_ones_stay(
    analytics_db: AsyncEngine,
) -> None:
    await _claim(analytics_db, 12, WEEK + timedelta(hours=1))
    await _claim(analytics_db, 3, WEEK - timedelta(hours=1))
    pruned_before = _metric("db_rows_pruned_total", table="processed_events")
    assert await _janitor(analytics_db).run_once() == 12
    assert await _count(analytics_db, "processed_events") == 3
    assert _metric("db_rows_pruned_total", table="processed_events") == pruned_before + 12
    assert _metric("db_prune_last_success_timestamp_seconds", table="processed_events") > 0
    assert await _janitor(analytics_db).run_once() == 0


async def test_a_replica_skips_its_turn_while_another_holds_the_lock(
    analytics_db: AsyncEngine,
) -> None:
    await _claim(analytics_db, 4, WEEK * 2)
    janitor = _janitor(analytics_db)
    skipped = _metric("db_prune_runs_total", table="processed_events", result="skipped")
    async with analytics_db.connect() as other, other.begin():
        await other.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": janitor._key})
        assert await janitor.run_once() is None
        assert await _count(analytics_db, "processed_events") == 4
    assert _metric("db_prune_runs_total", table="processed_events", result="skipped") == skipped + 1
    assert await janitor.run_once() == 4


async def test_the_background_loop_prunes_and_stops_on_request(analytics_db: AsyncEngine) -> None:
    janitor = _janitor(analytics_db)
    janitor.start()
    try:
        await _claim(analytics_db, 7, WEEK * 3)
        for _ in range(100):
            if await _count(analytics_db, "processed_events") == 0:
                break
            await asyncio.sleep(0.05)
        assert await _count(analytics_db, "processed_events") == 0
    finally:
        await asyncio.wait_for(janitor.stop(5.0), 2.0)
    assert janitor._task is not None
    assert janitor._task.done()


async def test_a_login_is_pruned_only_once_its_newest_refresh_token_expired(
    infra: Infra,
) -> None:
    engine = await _database(infra, "janitor_users", "user")
    user = uuid.uuid4()
    gone, live = uuid.uuid4(), uuid.uuid4()
    tokens = [
        # A login whose tokens all expired two days ago.
        (gone, NOW - timedelta(days=3)),
        (gone, NOW - timedelta(days=2)),
        # A login still going: an old used token and its live successor.
        (live, NOW - timedelta(days=5)),
        (live, NOW + timedelta(days=20)),
    ]
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO users (id, email, password_hash) VALUES (:id, :email, 'x')"),
                {"id": user, "email": f"{user.hex[:12]}@example.com"},
            )
            await conn.execute(
                text(
                    "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at)"
                    " VALUES (:id, :user, :family, :hash, :expires)"
                ),
                [
                    {
                        "id": uuid.uuid4(),
                        "user": user,
                        "family": family,
                        "hash": uuid.uuid4().bytes * 2,
                        "expires": expires,
                    }
                    for family, expires in tokens
                ],
            )
        janitor = _janitor(engine, "refresh_tokens", PRUNE_REFRESH_TOKENS, timedelta(hours=24))
        assert await janitor.run_once() == 2
        async with engine.connect() as conn:
            families = (
                await conn.execute(
                    text("SELECT family_id FROM refresh_tokens WHERE user_id = :user"),
                    {"user": user},
                )
            ).scalars()
            assert sorted(families) == [live, live]
    finally:
        await engine.dispose()


async def test_published_outbox_rows_go_after_the_retention_and_pending_ones_never(
    infra: Infra,
) -> None:
    engine = await _database(infra, "janitor_link", "link")
    rows = {
        "published long ago": (NOW - timedelta(days=3), NOW - timedelta(days=3)),
        "never published": (NOW - timedelta(days=5), None),
        "published lately": (NOW - timedelta(hours=3), NOW - timedelta(hours=1)),
    }
    try:
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE outbox"))
            await conn.execute(
                text(
                    "INSERT INTO outbox (topic, key, payload, created_at, published_at)"
                    " VALUES ('links', :key, '{}', :created, :published)"
                ),
                [
                    {"key": name.encode(), "created": created, "published": published}
                    for name, (created, published) in rows.items()
                ],
            )
        janitor = _janitor(engine, "outbox", PRUNE_OUTBOX, timedelta(hours=48))
        assert await janitor.run_once() == 1
        async with engine.connect() as conn:
            kept = (await conn.execute(text("SELECT key FROM outbox"))).scalars()
            assert sorted(bytes(key).decode() for key in kept) == [
                "never published",
                "published lately",
            ]
    finally:
        await engine.dispose()


def test_the_analytics_service_prunes_from_its_start(analytics_url: str) -> None:
    scrape = httpx.get(f"{analytics_url}/metrics", timeout=5).text
    assert 'db_prune_runs_total{result="done",table="processed_events"}' in scrape
