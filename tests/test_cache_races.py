"""The resolve cache under races and abuse, on the session's real Postgres and Redis.

The resolver and the service run in this process, on a database of their
own. Only the resolver's reads can be held (``HeldReads``): a load then
waits between its read of Postgres and its cache write while a change
commits and invalidates, which is the race the tombstones settle.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)

from infra.devstack.processes import ensure_database, run_once
from infra.devstack.stack import database_url
from services.chassis.breaker import Breaker
from services.chassis.db import asyncpg_url
from services.chassis.identity import Identity
from services.link.cache import NEGATIVE, CachedLink, LinkCache
from services.link.exceptions import LinkExpired, LinkNotFound, VisitLimitReached
from services.link.resolver import LinkResolver, LinkRow, link_reader
from services.link.schemas import LinkCreate, LinkUpdate
from services.link.service import LinkService
from tests.conftest import Infra, settings_for

DATABASE = "link_cache_races"
OWNER = Identity(str(uuid.uuid4()), "api_key", "203.0.113.9")
OLD, NEW = "https://example.com/old", "https://example.com/new"

Change = Callable[[LinkService, str], Awaitable[None]]


@pytest.fixture(scope="module")
async def engine(infra: Infra) -> AsyncIterator[AsyncEngine]:
    await asyncio.to_thread(ensure_database, infra.ports.postgres, DATABASE, DATABASE, DATABASE)
    url = database_url(infra.ports, DATABASE)
    # In a process of its own, as the service migrates.
    env = settings_for(infra, "link", infra.ports.link, database_url=url)
    await asyncio.to_thread(run_once, ["-m", "services.link", "migrate"], env)
    engine = create_async_engine(asyncpg_url(url))
    yield engine
    await engine.dispose()


@pytest.fixture
async def cache(infra: Infra) -> AsyncIterator[LinkCache]:
    redis = Redis.from_url(infra.redis_url)
    breaker = Breaker("cache-races", fail_max=3, reset_timeout=5)
    yield LinkCache(
        redis, breaker, ttl_seconds=3600, negative_ttl_seconds=60, permanent_max_age=3600
    )
    await redis.aclose()


@pytest.fixture
def links(engine: AsyncEngine, cache: LinkCache) -> LinkService:
    return LinkService(
        async_sessionmaker(engine, expire_on_commit=False),
        engine,
        cache,
        code_length=7,
        own_hosts=frozenset(),
        allow_anonymous=False,
        events_committed=lambda: None,
    )


class Reads:
    """The resolver's reads of Postgres (one statement each, outside SQLAlchemy's
    events), recorded by the codes they asked for."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.inner = link_reader(engine)
        self.seen: list[list[str]] = []

    async def __call__(self, codes: list[str]) -> Sequence[LinkRow]:
        self.seen.append(codes)
        return await self.inner(codes)


class HeldReads(Reads):
    """Reads that, done, wait until ``released`` is set."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.done = asyncio.Event()
        self.released = asyncio.Event()

    async def __call__(self, codes: list[str]) -> Sequence[LinkRow]:
        rows = await super().__call__(codes)
        self.done.set()
        await self.released.wait()
        return rows


@pytest.fixture
def reads(engine: AsyncEngine) -> Reads:
    return Reads(engine)


@pytest.fixture
def resolver(engine: AsyncEngine, cache: LinkCache, reads: Reads) -> LinkResolver:
    return LinkResolver(async_sessionmaker(engine, expire_on_commit=False), cache, reads)


@contextmanager
def statements(engine: AsyncEngine, reads: Reads) -> Iterator[list[str]]:
    """The SQL statements ``engine`` sends while the block runs, and the resolver's reads."""
    seen: list[str] = []
    before = len(reads.seen)

    def record(*args: Any) -> None:
        seen.append(args[2])  # (connection, cursor, statement, ...)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        seen.extend(f"read of {codes}" for codes in reads.seen[before:])


def alias() -> str:
    return "race-" + uuid.uuid4().hex[:10]


def writes(result: str) -> float:
    return REGISTRY.get_sample_value("link_cache_writes_total", {"result": result}) or 0.0


async def change_target(links: LinkService, code: str) -> None:
    await links.update(code, LinkUpdate(url=NEW), OWNER)


async def delete(links: LinkService, code: str) -> None:
    await links.delete(code, OWNER)


async def create(links: LinkService, code: str) -> None:
    await links.create(LinkCreate(url=NEW, alias=code), OWNER)


@pytest.mark.parametrize(
    ("existed", "change", "target_after"),
    # A created link's lookup finds its creation's tombstone; an unknown code's, nothing.
    [(True, change_target, NEW), (True, delete, None), (False, create, NEW)],
    ids=["update", "delete", "create"],
)
async def test_a_load_that_read_the_row_before_a_change_cannot_cache_it_after(
    engine: AsyncEngine,
    cache: LinkCache,
    links: LinkService,
    resolver: LinkResolver,
    existed: bool,
    change: Change,
    target_after: str | None,
) -> None:
    code = alias()
    if existed:
        await links.create(LinkCreate(url=OLD, alias=code), OWNER)
    held = HeldReads(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    loading = asyncio.create_task(LinkResolver(sessions, cache, held).resolve(code))
    await asyncio.wait_for(held.done.wait(), 5)  # the old state is read, not yet cached
    fenced_before = writes("fenced")
    await change(links, code)  # commits, then invalidates
    held.released.set()
    await asyncio.gather(loading, return_exceptions=True)

    left = await cache.get(code)  # nothing the held load read: a miss
    assert not isinstance(left, CachedLink)
    assert left is not NEGATIVE
    if target_after is None:
        with pytest.raises(LinkNotFound):
            await resolver.resolve(code)
    else:
        assert (await resolver.resolve(code)).url == target_after
    assert writes("fenced") == fenced_before + 1


async def test_an_exhausted_link_is_refused_without_postgres_until_its_limit_is_raised(
    engine: AsyncEngine, links: LinkService, resolver: LinkResolver, reads: Reads
) -> None:
    code = alias()
    await links.create(LinkCreate(url=OLD, alias=code, max_visits=1), OWNER)
    assert (await resolver.resolve(code)).url == OLD
    with pytest.raises(VisitLimitReached):
        await resolver.resolve(code)  # refused by Postgres, which the cache now remembers
    with statements(engine, reads) as seen:
        for _ in range(20):
            with pytest.raises(VisitLimitReached):
                await resolver.resolve(code)
    assert seen == []

    await links.update(code, LinkUpdate(max_visits=2), OWNER)
    assert (await resolver.resolve(code)).url == OLD
    with pytest.raises(VisitLimitReached):
        await resolver.resolve(code)


async def test_an_expired_link_is_refused_without_postgres_past_its_expiry(
    engine: AsyncEngine, links: LinkService, resolver: LinkResolver, reads: Reads
) -> None:
    code = alias()
    await links.create(LinkCreate(url=OLD, alias=code), OWNER)
    async with engine.begin() as connection:  # behind the cache's back, which is empty
        expire = text("UPDATE links SET expires_at = now() - interval '1 second' WHERE code = :c")
        await connection.execute(expire, {"c": code})
    with pytest.raises(LinkExpired):
        await resolver.resolve(code)
    # Past the second an entry capped at the link's expiry would have lasted.
    await asyncio.sleep(1.2)
    with statements(engine, reads) as seen:
        for _ in range(20):
            with pytest.raises(LinkExpired):
                await resolver.resolve(code)
    assert seen == []
