"""Link events go out through the outbox: with the change, only with it, and never lost."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from infra.devstack.processes import create_topics, ensure_database, free_port, start_broker
from infra.devstack.stack import database_url
from services.chassis.config import KafkaSettings
from services.chassis.db import asyncpg_url, session_scope
from services.chassis.events import LINKS_TOPIC, TOPICS, LinkChanged
from services.chassis.migrations import upgrade
from services.link.outbox import OutboxRelay, stage
from tests.accounts import register
from tests.conftest import Infra, running_gateway, running_link_service

LINK_MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "link" / "migrations"


def alias() -> str:
    return "o-" + uuid.uuid4().hex[:10]


def read_events(
    bootstrap: str, topic: str, codes: Collection[str], expected: int, timeout: float = 15.0
) -> list[dict[str, Any]]:
    """The events of ``codes`` on ``topic``, in partition order, once ``expected`` arrived.

    Partitions are assigned by hand (no consumer group): no join delay, and
    the topic is read from its beginning.
    """

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            assigned = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            found: list[dict[str, Any]] = []
            deadline = time.monotonic() + timeout
            # Once all arrived, a little longer, to catch events that should not be there.
            while time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=300)
                for message in (m for messages in batches.values() for m in messages):
                    event = orjson.loads(message.value)
                    if event["code"] in codes:
                        assert message.key == event["code"].encode()
                        found.append(event)
                if len(found) >= expected and not batches:
                    break
            return found
        finally:
            await consumer.stop()

    return asyncio.run(read())


def outbox_rows(url: str, codes: Collection[str]) -> list[asyncpg.Record]:
    """The outbox rows of ``codes``, oldest first, read straight from Postgres."""

    async def read() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetch(
                "SELECT key, published_at FROM outbox WHERE key = ANY($1::bytea[]) ORDER BY id",
                [code.encode() for code in codes],
            )
        finally:
            await connection.close()

    return asyncio.run(read())


def metric(base_url: str, name: str) -> float:
    text = httpx.get(f"{base_url}/metrics").text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_a_links_life_is_published_in_order_keyed_by_code(
    client: httpx.Client, infra: Infra
) -> None:
    owner, code = register(client), alias()
    created = client.post(
        "/api/v1/links",
        json={"url": "https://example.com/v1", "alias": code},
        headers=owner.bearer,
    )
    assert created.status_code == 201, created.text
    expires = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    patched = client.patch(
        f"/api/v1/links/{code}",
        json={
            "url": "https://example.com/v2",
            "redirect_type": 307,
            "expires_at": expires.astimezone(timezone(timedelta(hours=2))).isoformat(),
        },
        headers=owner.bearer,
    )
    assert patched.status_code == 200, patched.text
    assert client.delete(f"/api/v1/links/{code}", headers=owner.bearer).status_code == 204

    events = read_events(infra.bootstrap, LINKS_TOPIC, {code}, expected=3)
    assert [e["type"] for e in events] == ["link.created", "link.updated", "link.deleted"]
    assert [(e["url"], e["redirect_type"], e["expires_at"]) for e in events] == [
        ("https://example.com/v1", 302, None),
        ("https://example.com/v2", 307, expires.isoformat()),  # in UTC, whatever was sent
        (None, None, None),
    ]
    assert {e["owner_id"] for e in events} == {owner.user_id}
    assert {e["schema_version"] for e in events} == {1}
    assert len({e["event_id"] for e in events}) == 3
    assert all(re.fullmatch(r"[0-9a-f]{32}", e["event_id"]) for e in events)
    occurred = [datetime.fromisoformat(e["occurred_at"]) for e in events]
    assert occurred == sorted(occurred)
    assert all(at.utcoffset() == timedelta(0) for at in occurred)


def test_a_create_that_fails_writes_no_event(client: httpx.Client, infra: Infra) -> None:
    code = alias()
    first = client.post("/api/v1/links", json={"url": "https://example.com/first", "alias": code})
    assert first.status_code == 201
    taken = client.post("/api/v1/links", json={"url": "https://example.com/second", "alias": code})
    assert taken.status_code == 409

    assert len(outbox_rows(infra.link_database_url, [code])) == 1
    events = read_events(infra.bootstrap, LINKS_TOPIC, {code}, expected=1)
    assert [(e["type"], e["url"]) for e in events] == [
        ("link.created", "https://example.com/first")
    ]


def test_a_crash_between_commit_and_publish_loses_nothing(infra: Infra) -> None:
    # A database of its own: the session's link service would relay the rows
    # of a shared one to the session's broker.
    ensure_database(infra.ports.postgres, "link_outbox", "link_outbox", "link_outbox")
    db = database_url(infra.ports, "link_outbox")
    port = free_port()  # nothing listens here until the broker is started below
    bootstrap = f"127.0.0.1:{port}"
    codes = [alias() for _ in range(5)]

    with (
        running_link_service(infra, database_url=db, kafka_bootstrap_servers=bootstrap) as link,
        running_gateway(infra, link) as gateway,
        httpx.Client(base_url=gateway, timeout=10) as http,
    ):
        started = time.monotonic()
        for code in codes:
            body = {"url": f"https://example.com/{code}", "alias": code}
            assert http.post("/api/v1/links", json=body).status_code == 201
        assert time.monotonic() - started < 5  # requests did not wait for the broker
        rows = outbox_rows(db, codes)
        assert [row["key"].decode() for row in rows] == codes
        assert all(row["published_at"] is None for row in rows)
        assert metric(link, "outbox_publish_failures_total") > 0
    # That link service is gone (SIGTERM), every event committed and unsent.

    broker = start_broker(port, infra.workdir / f"broker-{port}.log")
    try:
        create_topics(bootstrap, TOPICS)
        with running_link_service(
            infra, database_url=db, kafka_bootstrap_servers=bootstrap
        ) as restarted:
            events = read_events(bootstrap, LINKS_TOPIC, codes, expected=len(codes))
            assert sorted(e["code"] for e in events) == sorted(codes)
            assert {e["type"] for e in events} == {"link.created"}
            deadline = time.monotonic() + 5
            while any(row["published_at"] is None for row in outbox_rows(db, codes)):
                assert time.monotonic() < deadline, "events sent but never marked published"
                time.sleep(0.05)
            assert metric(restarted, "outbox_published_total") == len(codes)
    finally:
        broker.stop()


def changed(code: str, url: str) -> LinkChanged:
    return LinkChanged(
        event_id=uuid.uuid4().hex,
        type="link.updated",
        code=code,
        owner_id=None,
        url=url,
        expires_at=None,
        redirect_type=302,
        occurred_at=datetime.now(UTC),
    )


async def pending(sessions: async_sessionmaker[AsyncSession], code: str) -> int:
    async with session_scope(sessions) as session:
        query = text("SELECT count(*) FROM outbox WHERE key = :key AND published_at IS NULL")
        return int(await session.scalar(query, {"key": code.encode()}) or 0)


async def wait_published(sessions: async_sessionmaker[AsyncSession], code: str) -> None:
    deadline = time.monotonic() + 5
    while await pending(sessions, code):
        assert time.monotonic() < deadline, f"the events of {code} were never published"
        await asyncio.sleep(0.05)


def test_a_relay_never_overtakes_another_on_one_link(infra: Infra) -> None:
    ensure_database(infra.ports.postgres, "link_relays", "link_relays", "link_relays")
    url = database_url(infra.ports, "link_relays")
    upgrade(LINK_MIGRATIONS, url)
    a, b = alias(), alias()
    kafka = KafkaSettings(kafka_bootstrap_servers=infra.bootstrap, kafka_enable_idempotence=False)

    async def scenario() -> None:
        engine = create_async_engine(asyncpg_url(url))
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        # Polls a minute apart: what is sent in time was not found by one.
        relay = OutboxRelay(sessions, kafka, poll_interval_seconds=60)
        try:
            async with session_scope(sessions) as session:
                for code, target in ((a, "a1"), (b, "b1"), (a, "a2")):
                    event = changed(code, f"https://example.com/{target}")
                    stage(session, LINKS_TOPIC, event.key(), event.to_json())
            async with session_scope(sessions) as other:
                # Another replica's relay holds the oldest row: a's first event.
                await other.execute(text("SELECT 1 FROM outbox ORDER BY id LIMIT 1 FOR UPDATE"))
                await relay.start()
                await wait_published(sessions, b)
                # a's second event was in the batch that sent b's, yet it waited.
                assert await pending(sessions, a) == 2
            # The other relay let go without sending, and told nobody: a's
            # held-back event is looked at again soon, and both follow in order.
            await wait_published(sessions, a)
        finally:
            await relay.stop(5)
            await engine.dispose()

    asyncio.run(scenario())
    events = read_events(infra.bootstrap, LINKS_TOPIC, {a, b}, expected=3)
    assert [e["url"] for e in events if e["code"] == a] == [
        "https://example.com/a1",
        "https://example.com/a2",
    ]
