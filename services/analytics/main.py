"""Wiring of the analytics service: the only place clients are built and closed.

Two consumers run inside the web process, on the same lifespan: ``clicks``
(counted into the rollups) and ``links`` (who owns which link). They stop
before the database and Redis are closed, within the shutdown bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.analytics.classify import AgentClassifier
from services.analytics.config import AnalyticsSettings
from services.analytics.ingest import ClickCounter, LinkChangeWriter
from services.analytics.pruning import PRUNE_PROCESSED_EVENTS
from services.analytics.router import router
from services.analytics.service import StatsService
from services.analytics.visitors import UniqueVisitors
from services.chassis.app import build_app
from services.chassis.consumer import BatchConsumer
from services.chassis.db import DATABASE_UNAVAILABLE_WHEN, LOST_CONNECTION, create_engine, ping
from services.chassis.decoding import decode_click, decode_link_change
from services.chassis.events import CLICKS_DLQ_TOPIC, CLICKS_TOPIC, LINKS_TOPIC
from services.chassis.health import DependencyCheck
from services.chassis.identity import GatewaySigner
from services.chassis.janitor import Janitor
from services.chassis.redis import create_redis

__all__ = ["create_app"]


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    settings = settings or AnalyticsSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        redis = create_redis(settings)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        visitors = UniqueVisitors(redis, retention_days=settings.unique_visitor_retention_days)
        counter = ClickCounter(sessions, AgentClassifier(settings.user_agent_cache_size), visitors)
        consumers: list[BatchConsumer[Any]] = [
            BatchConsumer(
                settings,
                topic=CLICKS_TOPIC,
                group_id=settings.consumer_group,
                decode=decode_click,
                write=counter.write,
                dead_letter_topic=CLICKS_DLQ_TOPIC,
            ),
            BatchConsumer(
                settings,
                topic=LINKS_TOPIC,
                group_id=settings.links_group,
                decode=decode_link_change,
                write=LinkChangeWriter(sessions).write,
                dead_letter_topic=None,
            ),
        ]
        for consumer in consumers:
            await consumer.start()
        janitor = Janitor.for_settings(
            "processed_events",
            engine,
            PRUNE_PROCESSED_EVENTS,
            keep_hours=settings.processed_events_retention_hours,
            settings=settings,
        )
        janitor.start()
        app.state.settings = settings
        app.state.stats = StatsService(sessions, visitors)
        app.state.health_checks = [
            DependencyCheck("postgres", lambda: ping(engine)),
            # Stats are served without these: unique visitors read as null,
            # and counting waits for the broker, losing nothing.
            DependencyCheck("redis", redis.ping, critical=False),
            DependencyCheck("kafka", consumers[0].probe, critical=False),
        ]
        try:
            yield
        finally:
            app.state.draining = True
            timeout = settings.shutdown_timeout_seconds
            await asyncio.gather(
                janitor.stop(timeout), *(consumer.stop(timeout) for consumer in consumers)
            )
            await redis.aclose()
            await engine.dispose()

    app = build_app(
        settings,
        title="Analytics service",
        description="Counts click events exactly once into rollups and serves link stats.",
        lifespan=lifespan,
        signer=GatewaySigner(settings.internal_auth_key.get_secret_value().encode()),
        unreachable=LOST_CONNECTION,
        unreachable_when=DATABASE_UNAVAILABLE_WHEN,
    )
    app.include_router(router)
    return app
