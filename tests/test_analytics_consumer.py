"""The analytics consumers, fed hand-made events straight on the session's broker.

Each test uses codes of its own, so it reads only its own rows of the
rollups however many other clicks the session's analytics service counts.
The first test also waits for the consumer group to form (seconds on this
broker): every check polls with a deadline instead of sleeping.

The poison test puts a value that is not JSON on the shared ``clicks``
topic, as a broken producer would: anything else reading that topic must
tolerate poison too (filter by key before decoding).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from redis.asyncio import Redis

from services.chassis.events import CLICKS_DLQ_TOPIC, CLICKS_TOPIC, LINKS_TOPIC
from tests.conftest import Infra
from tests.metrics import metric

T = TypeVar("T")

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
NOW = datetime.now(UTC).replace(minute=30)


def new_code() -> str:
    return "a-" + uuid.uuid4().hex[:12]


def click(code: str, **fields: Any) -> dict[str, Any]:
    """A LinkClicked (version 1) as the link service publishes it."""
    return {
        "event_id": uuid.uuid4().hex,
        "code": code,
        "occurred_at": NOW.isoformat(),
        "referrer": None,
        "user_agent": IPHONE,
        "ip_hash": uuid.uuid4().hex,
        "request_id": None,
        "schema_version": 1,
        **fields,
    }


def link_changed(code: str, kind: str, owner_id: str, at: datetime) -> dict[str, Any]:
    deleted = kind == "link.deleted"
    return {
        "event_id": uuid.uuid4().hex,
        "type": kind,
        "code": code,
        "owner_id": owner_id,
        "url": None if deleted else "https://example.com/",
        "expires_at": None,
        "redirect_type": None if deleted else 302,
        "occurred_at": at.isoformat(),
        "schema_version": 1,
    }


async def produce(infra: Infra, topic: str, key: str, values: list[Any]) -> None:
    """Send ``values`` in order under one key, so they share a partition and its order."""
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap)
    await producer.start()
    try:
        for value in values:
            raw = value if isinstance(value, bytes) else orjson.dumps(value)
            await producer.send_and_wait(topic, raw, key=key.encode())
    finally:
        await producer.stop()


async def eventually(
    read: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float = 30
) -> T:
    """``read()`` until ``done`` says so or the deadline passes; the last value read."""
    deadline = time.monotonic() + within
    while True:
        value = await read()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


@pytest.fixture
async def db(infra: Infra, analytics_url: str) -> AsyncIterator[asyncpg.Connection]:
    url = f"postgresql://analytics:analytics@127.0.0.1:{infra.ports.postgres}/analytics"
    connection = await asyncpg.connect(url)
    try:
        yield connection
    finally:
        await connection.close()


async def counted(db: asyncpg.Connection, code: str) -> tuple[int, int]:
    """(human clicks, bot clicks) of ``code`` in the daily rollup."""
    row = await db.fetchrow(
        "SELECT sum(clicks) AS c, sum(bot_clicks) AS b FROM clicks_daily WHERE code = $1", code
    )
    return (int(row["c"] or 0), int(row["b"] or 0)) if row else (0, 0)


async def seen(db: asyncpg.Connection, event_id: str) -> bool:
    """Whether analytics has processed the event with this id."""
    found = await db.fetchval("SELECT 1 FROM processed_events WHERE event_id = $1", event_id)
    return found is not None


async def test_humans_and_bots_are_counted_apart_by_hour_and_day(
    infra: Infra, db: asyncpg.Connection, analytics_url: str
) -> None:
    code = new_code()
    visitor = uuid.uuid4().hex
    events = [
        click(code, ip_hash=visitor),
        click(code, ip_hash=visitor, user_agent=WINDOWS_CHROME),
        click(code),
        click(code, user_agent=GOOGLEBOT),
        click(code, user_agent=None),  # no User-Agent at all: a script
    ]
    await produce(infra, CLICKS_TOPIC, code, events)
    assert await eventually(lambda: counted(db, code), lambda c: sum(c) >= 5) == (3, 2)
    hourly = await db.fetch(
        "SELECT hour, clicks, bot_clicks FROM clicks_hourly WHERE code = $1", code
    )
    assert [(r["hour"], r["clicks"], r["bot_clicks"]) for r in hourly] == [
        (NOW.replace(minute=0, second=0, microsecond=0), 3, 2)
    ]
    # Unique visitors are people: two of the three human clicks share a visitor.
    redis = Redis.from_url(f"redis://127.0.0.1:{infra.ports.redis}/2")
    try:
        assert await redis.pfcount(f"uv:{code}:{NOW.date().isoformat()}") == 2
        assert 0 < await redis.ttl(f"uv:{code}:{NOW.date().isoformat()}") <= 401 * 86400
    finally:
        await redis.aclose()


async def test_referrers_devices_browsers_and_systems_are_broken_down(
    infra: Infra, db: asyncpg.Connection
) -> None:
    code = new_code()
    events = [
        click(code, referrer="https://www.google.com/search?q=short"),
        click(code, referrer="https://google.com/"),
        click(code, referrer="https://t.co/xyz", user_agent=WINDOWS_CHROME),
        click(code, user_agent=GOOGLEBOT),
    ]
    await produce(infra, CLICKS_TOPIC, code, events)
    await eventually(lambda: counted(db, code), lambda c: sum(c) >= 4)
    rows = await db.fetch(
        "SELECT dimension, value, clicks, bot_clicks FROM clicks_by_dimension WHERE code = $1",
        code,
    )
    seen = {(r["dimension"], r["value"]): (r["clicks"], r["bot_clicks"]) for r in rows}
    assert seen == {
        ("referrer", "google.com"): (2, 0),
        ("referrer", "t.co"): (1, 0),
        ("referrer", "direct"): (0, 1),
        ("device", "mobile"): (2, 0),
        ("device", "desktop"): (1, 0),
        ("device", "bot"): (0, 1),
        ("browser", "Mobile Safari"): (2, 0),
        ("browser", "Chrome"): (1, 0),
        ("browser", "Googlebot"): (0, 1),
        ("os", "iOS"): (2, 0),
        ("os", "Windows"): (1, 0),
        ("os", "Other"): (0, 1),
    }


async def test_the_same_event_twice_counts_once(
    infra: Infra, db: asyncpg.Connection, analytics_url: str
) -> None:
    code = new_code()
    twice, last = click(code), click(code)
    skipped = metric(analytics_url, "analytics_duplicates_skipped_total", topic="clicks")
    await produce(infra, CLICKS_TOPIC, code, [twice, twice])  # one batch, most likely
    await produce(infra, CLICKS_TOPIC, code, [twice, last])  # a later batch
    assert await eventually(lambda: seen(db, last["event_id"]), lambda found: found)
    # The last event is counted, so all before it on the partition were seen.
    assert await counted(db, code) == (2, 0)
    after = metric(analytics_url, "analytics_duplicates_skipped_total", topic="clicks")
    assert after - skipped >= 2


async def read_dead_letters(infra: Infra, key: str, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(CLICKS_DLQ_TOPIC, 0)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[Any] = []
        deadline = time.monotonic() + 15
        while len(found) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found += [r for r in records if r.key == key.encode()]
        return found
    finally:
        await consumer.stop()


async def test_poison_goes_to_the_dead_letter_topic_and_counting_goes_on(
    infra: Infra, db: asyncpg.Connection, analytics_url: str
) -> None:
    code = new_code()
    poison = [
        b"{not json",
        {"schema_version": 1, "code": code},  # fields missing
        {**click(code), "schema_version": 99},
    ]
    good = click(code)
    await produce(infra, CLICKS_TOPIC, code, [*poison, good])
    assert await eventually(lambda: counted(db, code), lambda c: sum(c) >= 1) == (1, 0)

    letters = await read_dead_letters(infra, code, expected=3)
    headers = [{k: v.decode() for k, v in record.headers} for record in letters]
    assert [h["x-dlq-reason"] for h in headers] == [
        "not_json",
        "invalid_event",
        "unknown_schema_version",
    ]
    assert letters[0].value == b"{not json"  # as it came, for whoever repairs it
    assert {h["x-original-topic"] for h in headers} == {CLICKS_TOPIC}
    assert len({h["x-original-partition"] for h in headers}) == 1
    offsets = [int(h["x-original-offset"]) for h in headers]
    assert offsets == sorted(offsets)
    assert (
        metric(analytics_url, "consumer_dead_lettered_total", topic="clicks", reason="not_json")
        >= 1
    )


async def test_link_changes_give_links_their_owner_and_deletion(
    infra: Infra, db: asyncpg.Connection
) -> None:
    code, owner = new_code(), str(uuid.uuid4())
    created = link_changed(code, "link.created", owner, NOW)
    deleted = link_changed(code, "link.deleted", owner, NOW + timedelta(seconds=2))
    # A relay resending an older change must not undo a newer one.
    late = link_changed(code, "link.updated", owner, NOW + timedelta(seconds=1))
    await produce(infra, LINKS_TOPIC, code, [created, created, deleted, late])

    await eventually(lambda: seen(db, late["event_id"]), lambda found: found)
    row = await db.fetchrow("SELECT * FROM links WHERE code = $1", code)
    assert row is not None
    assert str(row["owner_id"]) == owner
    assert row["deleted_at"] == NOW + timedelta(seconds=2)
    assert row["changed_at"] == NOW + timedelta(seconds=2)


async def test_a_link_is_public_until_its_owner_is_known_and_gone_once_deleted(
    infra: Infra, db: asyncpg.Connection, gateway_url: str
) -> None:
    code, owner = new_code(), str(uuid.uuid4())
    await produce(infra, CLICKS_TOPIC, code, [click(code)])
    await eventually(lambda: counted(db, code), lambda c: sum(c) >= 1)
    async with httpx.AsyncClient(base_url=gateway_url) as http:

        async def stats() -> httpx.Response:
            return await http.get(f"/api/v1/links/{code}/stats")

        # Clicks, but no LinkChanged yet: treated as an anonymous link.
        response = await stats()
        assert response.status_code == 200
        assert response.json()["totals"]["clicks"] == 1

        await produce(infra, LINKS_TOPIC, code, [link_changed(code, "link.created", owner, NOW)])
        response = await eventually(stats, lambda r: r.status_code != 200)
        assert response.status_code == 401

        deleted = link_changed(code, "link.deleted", owner, NOW + timedelta(seconds=1))
        await produce(infra, LINKS_TOPIC, code, [deleted])
        response = await eventually(stats, lambda r: r.status_code != 401)
        assert response.status_code == 404
        assert response.json()["code"] == "link_not_found"
