"""Consuming a batch again owes nothing again: a crash between the write and
the offset commit, replayed by hand.

The consumer loop (services/chassis/consumer.py) commits offsets only
after ``write`` returns, so after a crash the broker hands the same batch
to ``write`` again. Here the writers run in this process against the
session's webhooks database, twice on the same batch, exactly as that
second delivery would; the session's dispatcher then sends what is owed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from infra.devstack.stack import database_url
from services.chassis.db import asyncpg_url
from services.chassis.janitor import Janitor
from services.webhooks.fanout import ClickFanout, LinkFanout
from services.webhooks.payloads import Click, LinkEvent
from services.webhooks.pruning import PRUNE_FINISHED_DELIVERIES
from tests.accounts import register
from tests.conftest import Infra
from tests.test_analytics_consumer import new_code
from tests.webhook_receiver import receiver
from tests.webhooks_helpers import clicked_ids, create_endpoint, wait_for

pytestmark = pytest.mark.usefixtures("webhooks_url")
Sessions = async_sessionmaker[AsyncSession]

OWED = text(
    "SELECT count(*) FROM delivery_events de JOIN deliveries d ON d.id = de.delivery_id"
    " WHERE de.endpoint_id = :endpoint"
)


def created(code: str, owner_id: str) -> LinkEvent:
    return LinkEvent(
        event_id=uuid.uuid4().hex,
        code=code,
        occurred_at=datetime.now(UTC),
        schema_version=1,
        type="link.created",
        owner_id=uuid.UUID(owner_id),
        url="https://example.com/",
    )


def clicked(code: str) -> Click:
    return Click(
        event_id=uuid.uuid4().hex, code=code, occurred_at=datetime.now(UTC), schema_version=1
    )


@asynccontextmanager
async def webhooks_db(infra: Infra) -> AsyncIterator[tuple[AsyncEngine, Sessions]]:
    """An engine on the session's webhooks database and its sessions, as the
    service's writers use them; disposed afterwards."""
    engine = create_async_engine(asyncpg_url(database_url(infra.ports, "webhooks")))
    try:
        yield engine, async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


async def write_twice(infra: Infra, owner_id: str, endpoint_id: str, code: str) -> list[int]:
    """The link, then a batch of clicks written twice; what is owed after each write."""
    clicks = [clicked(code) for _ in range(5)]
    owed: list[int] = []
    async with webhooks_db(infra) as (engine, sessions):
        await LinkFanout(sessions, 100).write([created(code, owner_id)])
        for _ in range(2):
            await ClickFanout(sessions, 100).write(clicks)
            async with engine.connect() as conn:
                owed.append(int((await conn.execute(OWED, {"endpoint": endpoint_id})).scalar_one()))
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


async def prune_finished(infra: Infra) -> int | None:
    async with webhooks_db(infra) as (engine, _):
        janitor = Janitor(
            "deliveries",
            engine,
            PRUNE_FINISHED_DELIVERIES,
            keep=timedelta(0),
            interval_seconds=60,
            batch_rows=1000,
        )
        return await janitor.run_once()


def test_finished_deliveries_are_pruned_with_their_attempts_and_claims(
    infra: Infra, client: httpx.Client
) -> None:
    owner = register(client)
    with receiver() as hooks:
        endpoint = create_endpoint(client, owner, hooks.url)
        path = f"/api/v1/webhooks/{endpoint['id']}"
        client.post(f"{path}/test", headers=owner.bearer)
        wait_for(
            lambda: client.get(f"{path}/deliveries", headers=owner.bearer).json()["items"],
            lambda items: bool(items) and items[0]["state"] == "delivered",
        )
        hooks.status = 500
        client.post(f"{path}/test", headers=owner.bearer)  # pending: kept
        assert (asyncio.run(prune_finished(infra)) or 0) >= 1
    left = client.get(f"{path}/deliveries", headers=owner.bearer).json()["items"]
    assert [d["state"] for d in left] == ["pending"]


async def race(infra: Infra, owner_id: str, codes: list[str]) -> None:
    """Each code's link and its click, written by the two consumers at the same time."""
    async with webhooks_db(infra) as (_, sessions):
        for code in codes:
            await asyncio.gather(
                ClickFanout(sessions, 100).write([clicked(code)]),
                LinkFanout(sessions, 100).write([created(code, owner_id)]),
            )


def test_a_click_racing_its_links_creation_is_never_stranded(
    infra: Infra, client: httpx.Client
) -> None:
    owner = register(client)
    codes = [new_code() for _ in range(20)]
    with receiver() as hooks:
        create_endpoint(client, owner, hooks.url, event_types=["link.clicked"])
        asyncio.run(race(infra, owner.user_id, codes))
        got = wait_for(hooks.received, lambda r: len(clicked_ids(r)) >= len(codes))
    assert len(clicked_ids(got)) == len(codes)


DELIVERY_IDS = text("SELECT id FROM deliveries WHERE endpoint_id = :endpoint ORDER BY id")
FORGET = (
    text("DELETE FROM delivery_events WHERE endpoint_id = :endpoint"),
    text("DELETE FROM deliveries WHERE endpoint_id = :endpoint"),
)


async def owe_twice_across_a_restore(
    infra: Infra, owner_id: str, endpoint_id: str, code: str
) -> list[list[uuid.UUID]]:
    """A link event and a batch of clicks owed; the claims and deliveries then
    lost (as a restore from an older backup loses them); the same events owed
    again, as the rewound consumers read them. The delivery ids each time."""
    link, clicks = created(code, owner_id), [clicked(code) for _ in range(3)]
    ids: list[list[uuid.UUID]] = []
    async with webhooks_db(infra) as (engine, sessions):
        for attempt in range(2):
            await LinkFanout(sessions, 100).write([link])
            await ClickFanout(sessions, 100).write(clicks)
            async with engine.begin() as conn:
                found = await conn.execute(DELIVERY_IDS, {"endpoint": endpoint_id})
                ids.append([row[0] for row in found])
                if attempt == 0:
                    for statement in FORGET:
                        await conn.execute(statement, {"endpoint": endpoint_id})
    return ids


def test_events_owed_again_after_a_restore_keep_their_webhook_ids(
    infra: Infra, client: httpx.Client
) -> None:
    """Receivers deduplicate by ``webhook-id``: an event owed again because
    the database went back to a backup must come back under the same one."""
    owner = register(client)
    endpoint = create_endpoint(client, owner, "https://hooks.example.com/restore")
    before, after = asyncio.run(
        owe_twice_across_a_restore(infra, owner.user_id, endpoint["id"], new_code())
    )
    assert len(before) == 2  # the link event's delivery and the clicks' one
    assert after == before
