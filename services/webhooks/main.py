"""Wiring of the webhooks service: the only place clients are built and closed.

Three loops run inside the web process, on the same lifespan: two
consumers (``clicks`` and ``links``, each its own group) that only write
what is owed, and the dispatcher that delivers it. They stop before the
database is closed, within the shutdown bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.chassis.app import build_app
from services.chassis.consumer import BatchConsumer
from services.chassis.db import DATABASE_UNAVAILABLE_WHEN, LOST_CONNECTION, create_engine, ping
from services.chassis.deadletter import DeadLetters
from services.chassis.events import CLICKS_TOPIC, LINKS_TOPIC
from services.chassis.health import DependencyCheck
from services.chassis.identity import GatewaySigner
from services.chassis.janitor import Janitor
from services.webhooks.config import WebhooksSettings
from services.webhooks.dispatcher import Dispatcher
from services.webhooks.fanout import ClickFanout, ClickRecords, LinkFanout
from services.webhooks.payloads import decode_link_record
from services.webhooks.pruning import PRUNE_FINISHED_DELIVERIES, PRUNE_PARKED_CLICKS
from services.webhooks.router import router
from services.webhooks.service import WebhookService

__all__ = ["create_app"]


def create_app(settings: WebhooksSettings | None = None) -> FastAPI:
    settings = settings or WebhooksSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        batch_max = settings.click_batch_max
        # Poison is logged and skipped: the dead-letter topic is analytics's.
        consumers: list[BatchConsumer[Any]] = [
            BatchConsumer(
                settings,
                topic=topic,
                group_id=group,
                decode_record=decode,
                write=write,
                dead_letter_topic=None,
            )
            for topic, group, decode, write in (
                (
                    CLICKS_TOPIC,
                    settings.consumer_group,
                    _undecoded,  # read by ClickRecords, and only the records it needs
                    ClickRecords(
                        sessions,
                        ClickFanout(sessions, batch_max),
                        DeadLetters(settings, CLICKS_TOPIC, None),
                    ).write,
                ),
                (
                    LINKS_TOPIC,
                    settings.links_group,
                    decode_link_record,
                    LinkFanout(sessions, batch_max).write,
                ),
            )
        ]
        for consumer in consumers:
            await consumer.start()
        dispatcher = Dispatcher(sessions, settings)
        dispatcher.start()
        janitors = [
            Janitor.for_settings(table, engine, statement, keep_hours=hours, settings=settings)
            for table, statement, hours in (
                ("parked_clicks", PRUNE_PARKED_CLICKS, settings.parked_click_hours),
                ("deliveries", PRUNE_FINISHED_DELIVERIES, settings.delivery_retention_hours),
            )
        ]
        for janitor in janitors:
            janitor.start()
        app.state.settings = settings
        app.state.webhooks = WebhookService(sessions, settings)
        app.state.health_checks = [
            DependencyCheck("postgres", lambda: ping(engine)),
            # Endpoints are managed without it; owing waits for it, losing nothing.
            DependencyCheck("kafka", consumers[0].probe, critical=False),
        ]
        try:
            yield
        finally:
            app.state.draining = True
            timeout = settings.shutdown_timeout_seconds
            await asyncio.gather(
                *(janitor.stop(timeout) for janitor in janitors),
                dispatcher.stop(timeout),
                *(consumer.stop(timeout) for consumer in consumers),
            )
            await engine.dispose()

    app = build_app(
        settings,
        title="Webhooks service",
        description="Tells the endpoints users register about their links' events, signed.",
        lifespan=lifespan,
        signer=GatewaySigner(settings.internal_auth_key.get_secret_value().encode()),
        unreachable=LOST_CONNECTION,
        unreachable_when=DATABASE_UNAVAILABLE_WHEN,
    )
    app.include_router(router)
    return app


def _undecoded(record: Any) -> Any:
    return record
