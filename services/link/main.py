"""Wiring of the link service: the only place clients are built and closed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.chassis.app import build_app
from services.chassis.breaker import redis_breaker
from services.chassis.db import DATABASE_UNAVAILABLE_WHEN, LOST_CONNECTION, create_engine, ping
from services.chassis.events import CLICKS_TOPIC
from services.chassis.health import DependencyCheck
from services.chassis.identity import GatewaySigner
from services.chassis.janitor import Janitor
from services.chassis.kafka import EventPublisher
from services.chassis.redis import create_redis
from services.chassis.urls import host_key
from services.link.cache import LinkCache
from services.link.clicks import ClickRecorder
from services.link.config import LinkSettings
from services.link.outbox import OutboxRelay
from services.link.pruning import PRUNE_OUTBOX
from services.link.resolver import LinkResolver, link_reader
from services.link.router import router
from services.link.service import LinkService
from services.link.shortcut import HotPathShortcut

__all__ = ["create_app"]


def create_app(settings: LinkSettings | None = None) -> FastAPI:
    settings = settings or LinkSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        redis = create_redis(settings)
        publisher = EventPublisher.for_clicks(settings, CLICKS_TOPIC)
        await publisher.start()
        key = settings.ip_hash_key.get_secret_value().encode() if settings.ip_hash_key else None
        app.state.settings = settings
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        relay = OutboxRelay(sessions, settings)
        await relay.start()
        janitor = Janitor.for_settings(
            "outbox",
            engine,
            PRUNE_OUTBOX,
            keep_hours=settings.outbox_retention_hours,
            settings=settings,
        )
        janitor.start()
        cache = LinkCache(
            redis,
            redis_breaker(settings),
            ttl_seconds=settings.cache_ttl_seconds,
            negative_ttl_seconds=settings.negative_cache_ttl_seconds,
            permanent_max_age=settings.permanent_redirect_max_age_seconds,
        )
        app.state.links = LinkService(
            sessions,
            engine,
            cache,
            code_length=settings.code_length,
            own_hosts=frozenset({host_key(settings.public_base_url)}),
            allow_anonymous=settings.allow_anonymous_create,
            events_committed=relay.wake,
        )
        app.state.resolver = LinkResolver(sessions, cache, link_reader(engine))
        app.state.clicks = ClickRecorder(publisher, key)
        app.state.health_checks = [
            DependencyCheck("postgres", lambda: ping(engine)),
            # Redirects survive without these (Postgres, the event buffer).
            DependencyCheck("redis", redis.ping, critical=False),
            DependencyCheck("kafka", lambda: _connected(publisher), critical=False),
        ]
        try:
            yield
        finally:
            app.state.draining = True
            await janitor.stop(settings.shutdown_timeout_seconds)
            await relay.stop(settings.shutdown_timeout_seconds)
            await publisher.stop(settings.shutdown_timeout_seconds)
            await redis.aclose()
            await engine.dispose()

    app = build_app(
        settings,
        title="Link service",
        description="Creates short links, resolves them, publishes one click event per redirect.",
        lifespan=lifespan,
        signer=GatewaySigner(settings.internal_auth_key.get_secret_value().encode()),
        shortcut=HotPathShortcut,
        unreachable=LOST_CONNECTION,
        unreachable_when=DATABASE_UNAVAILABLE_WHEN,
    )
    app.include_router(router)
    return app


async def _connected(publisher: EventPublisher) -> None:
    if not publisher.connected:
        raise ConnectionError("no broker connection")
