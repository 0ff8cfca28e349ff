"""Only the clicks someone could be owed are read.

``ClickRecords`` runs here against the session's webhooks database, on
records as the consumer hands them over. Whether a record was read is told
by a poison value: reading it sets it aside (counted in
``consumer_dead_lettered_total``), not reading it leaves no trace.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from services.chassis.config import KafkaSettings
from services.chassis.db import session_scope
from services.chassis.deadletter import DeadLetters
from services.chassis.events import CLICKS_TOPIC
from services.webhooks.fanout import ClickFanout, ClickRecords, LinkFanout
from services.webhooks.repository import LinkRepository
from tests.accounts import register
from tests.conftest import Infra
from tests.test_analytics_consumer import new_code
from tests.test_webhooks_idempotence import OWED, created, webhooks_db
from tests.webhook_receiver import receiver
from tests.webhooks_helpers import create_endpoint

pytestmark = pytest.mark.usefixtures("webhooks_url")
POISON = b"not json"


@dataclass(frozen=True)
class Record:
    """What aiokafka hands the consumer, as far as ``ClickRecords`` reads it."""

    key: bytes | None
    value: bytes
    topic: str = CLICKS_TOPIC
    partition: int = 0
    offset: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()


def click(code: str) -> Record:
    value = {
        "event_id": uuid.uuid4().hex,
        "code": code,
        "occurred_at": "2026-12-07T06:00:00+00:00",
        "schema_version": 1,
    }
    return Record(code.encode(), orjson.dumps(value))


def poison_read() -> float:
    labels = {"topic": CLICKS_TOPIC, "reason": "not_json"}
    return REGISTRY.get_sample_value("consumer_dead_lettered_total", labels) or 0.0


async def consume(infra: Infra, owners: dict[str, str], records: list[Record]) -> dict[str, int]:
    """Learn each code's owner, hand ``records`` over; what each table holds of them after."""
    dead_letters = DeadLetters(KafkaSettings(), CLICKS_TOPIC, None)
    async with webhooks_db(infra) as (engine, sessions):
        await LinkFanout(sessions, 100).write([created(c, o) for c, o in owners.items()])
        await ClickRecords(sessions, ClickFanout(sessions, 100), dead_letters).write(records)
        codes = sorted({r.key.decode() for r in records if r.key})
        async with engine.connect() as conn:
            parked = text("SELECT count(*) FROM parked_clicks WHERE code = ANY(:codes)")
            return {"parked": int((await conn.execute(parked, {"codes": codes})).scalar_one())}


async def owed_to(infra: Infra, endpoint_id: str) -> int:
    async with webhooks_db(infra) as (engine, _), engine.connect() as conn:
        return int((await conn.execute(OWED, {"endpoint": endpoint_id})).scalar_one())


def test_clicks_of_owners_without_a_click_endpoint_are_not_read(
    infra: Infra, client: httpx.Client
) -> None:
    quiet, subscriber = register(client), register(client)
    quiet_code, subscribed_code, unknown_code = new_code(), new_code(), new_code()
    before = poison_read()
    with receiver() as hooks:
        # The quiet owner takes link events only: clicks are owed to nobody.
        create_endpoint(client, quiet, hooks.url, event_types=["link.created"])
        endpoint = create_endpoint(client, subscriber, hooks.url, event_types=["link.clicked"])
        records = [
            click(quiet_code),
            Record(quiet_code.encode(), POISON),  # never read: no trace
            click(subscribed_code),
            click(subscribed_code),
            Record(subscribed_code.encode(), POISON),  # read: set aside
            click(unknown_code),  # its owner is not known yet: read, and parked
            Record(None, POISON),  # no key to judge by: read
        ]
        owners = {quiet_code: quiet.user_id, subscribed_code: subscriber.user_id}
        held = asyncio.run(consume(infra, owners, records))
        owed = asyncio.run(owed_to(infra, endpoint["id"]))
    assert poison_read() - before == 2
    assert owed == 2
    assert held == {"parked": 1}


async def learn_in_order(infra: Infra, code: str, changes: list[tuple[str, int]]) -> str | None:
    """Learn (owner, minute) changes of ``code`` one batch each, in the order given."""
    base = datetime(2026, 12, 7, tzinfo=UTC)
    async with webhooks_db(infra) as (_, sessions):
        for owner, minute in changes:
            async with session_scope(sessions) as session:
                rows = [(code, uuid.UUID(owner), base + timedelta(minutes=minute))]
                await LinkRepository(session).learn(rows)
        async with session_scope(sessions) as session:
            owner_id = (await LinkRepository(session).owners([code])).get(code)
    return str(owner_id) if owner_id else None


def test_an_older_change_of_a_link_never_overwrites_a_newer_owner(infra: Infra) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    code = new_code()
    # The newer change (minute 2) arrives first, the older (minute 1) after it.
    assert asyncio.run(learn_in_order(infra, code, [(second, 2), (first, 1)])) == second
    assert asyncio.run(learn_in_order(infra, code, [(first, 3)])) == first
