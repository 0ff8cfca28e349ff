"""Invalidating the redirect cache from the ``links`` topic.

A link changed through another gateway replica (or any other writer of the
link service) reaches this one as a ``LinkChanged`` event; the entry is
dropped on arrival. The consumer has no group: every replica reads every
partition, from the latest offset (older changes concern entries this
process learned after them, or never had). While the broker is away, the
cache's freshness bound (``GATEWAY_REDIRECT_CACHE_SECONDS``) is what caps
how long an old target is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from gateway.stale import StaleRedirects
from services.chassis.config import KafkaSettings
from services.chassis.events import LINKS_TOPIC

__all__ = ["LinkChangeListener"]

log = logging.getLogger(__name__)
INVALIDATIONS = Counter(
    "gateway_redirect_cache_invalidations_total",
    "Links dropped from the gateway's redirect cache on a LinkChanged event.",
)
_RETRY_SECONDS = 1.0


class LinkChangeListener:
    def __init__(self, settings: KafkaSettings, cache: StaleRedirects) -> None:
        self._settings = settings
        self._cache = cache
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="link-changes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        # Until cancelled: each pass connects, reads until the broker fails,
        # then waits a moment and starts over.
        while True:
            consumer = AIOKafkaConsumer(
                LINKS_TOPIC,
                bootstrap_servers=self._settings.kafka_bootstrap_servers,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
            )
            try:
                await consumer.start()
                log.info("listening for link changes", extra={"topic": LINKS_TOPIC})
                async for message in consumer:
                    self._apply(message.value)
            except (KafkaError, OSError) as exc:
                log.warning("link changes unavailable", extra={"error": repr(exc)})
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
            await asyncio.sleep(_RETRY_SECONDS)

    def _apply(self, value: bytes | None) -> None:
        try:
            event = orjson.loads(value or b"")
            code, change = event["code"], event["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("unreadable link change skipped")
            return
        # A creation changes no redirect anyone has seen (the code was unknown,
        # and unknown codes are not kept); dropping on it would only cost a miss.
        if isinstance(code, str) and change != "link.created":
            self._cache.invalidate(code)
            INVALIDATIONS.inc()
