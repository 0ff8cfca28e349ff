"""Consuming a batch again owes nothing again: a crash between the write and
the offset commit, replayed by hand.

The consumer loop (services/analytics/consumer.py) commits offsets only
after ``write`` returns, so after a crash the broker hands the same batch
to ``write`` again. Here the writers run in this process against the
session's webhooks database, twice on the same batch, exactly as that
second delivery would; the session's dispatcher then sends what is owed.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from infra.devstack.stack import database_url
from services.chassis.db import asyncpg_url
from services.webhooks.fanout import ClickFanout, LinkFanout
from services.webhooks.payloads import Click, LinkEvent
from tests.accounts import register
from tests.conftest import Infra
from tests.test_analytics_consumer import new_code
from tests.webhook_receiver import receiver
from tests.webhooks_helpers import clicked_ids, create_endpoint, wait_for

pytestmark = pytest.mark.usefixtures("webhooks_url")

OWED = text(
    "SELECT count(*) FROM delivery_events de JOIN deliveries d ON d.id = de.delivery_id"
    " WHERE de.endpoint_id = :endpoint"
)


async def write_twice(infra: Infra, owner_id: str, endpoint_id: str, code: str) -> list[int]:
    """The link, then a batch of clicks written twice; what is owed after each write."""
    engine = create_async_engine(asyncpg_url(database_url(infra.ports, "webhooks")))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    now = datetime.now(UTC)
    link = LinkEvent(
        event_id=uuid.uuid4().hex,
        code=code,
        occurred_at=now,
        schema_version=1,
        type="link.created",
        owner_id=uuid.UUID(owner_id),
        url="https://example.com/",
    )
    clicks = [
        Click(event_id=uuid.uuid4().hex, code=code, occurred_at=now, schema_version=1)
        for _ in range(5)
    ]
    owed: list[int] = []
    try:
        await LinkFanout(sessions, 100).write([link])
        for _ in range(2):
            await ClickFanout(sessions, 100).write(clicks)
            async with engine.connect() as conn:
                owed.append(int((await conn.execute(OWED, {"endpoint": endpoint_id})).scalar_one()))
    finally:
        await engine.dispose()
    return owed


def test_a_batch_consumed_again_after_a_crash_owes_and_sends_nothing_twice(
    infra: Infra, client: httpx.Client
) -> None:
    owner = register(client)
    with receiver() as hooks:
        endpoint = create_endpoint(client, owner, hooks.url, event_types=["link.clicked"])
        owed = asyncio.run(write_twice(infra, owner.user_id, endpoint["id"], new_code()))
        got = wait_for(hooks.received, lambda r: len(clicked_ids(r)) >= 5)
        wait_for(hooks.received, lambda r: len(r) > len(got), within=1.5)  # nothing more comes
        ids = clicked_ids(hooks.received())
    assert owed == [5, 5]
    assert len(ids) == 5
    assert len(set(ids)) == 5
