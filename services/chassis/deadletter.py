"""Where poison goes: a dead-letter topic, with why and whence in its headers.

A message is produced to the dead-letter topic as it came (key and value
untouched, for whoever repairs and replays it), with headers::

    x-dlq-reason          not_json | invalid_event | unknown_schema_version
    x-dlq-detail          what exactly, for a person
    x-original-topic      where it was read...
    x-original-partition
    x-original-offset     ...and where exactly

A topic without a dead-letter topic (``links``) has its poison logged with
the same facts and skipped. Either way it is counted in
``consumer_dead_lettered_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from services.chassis.config import KafkaSettings
from services.chassis.consumer_metrics import DEAD_LETTERED
from services.chassis.decoding import PoisonMessage
from services.chassis.kafka import start_producer

__all__ = ["DeadLetters", "Poisoned"]

log = logging.getLogger(__name__)

# A consumed record (aiokafka's ConsumerRecord) and why it cannot be processed.
Poisoned = tuple[Any, PoisonMessage]


class DeadLetters:
    """Sets poison aside, for one source topic; ``open`` before, ``close`` after."""

    def __init__(self, settings: KafkaSettings, source_topic: str, topic: str | None) -> None:
        self._settings = settings
        self._source = source_topic
        self.topic = topic
        self._producer: AIOKafkaProducer | None = None

    async def open(self) -> None:
        """Connect the producer (if there is a topic); raises when the broker is away."""
        if self.topic is None:
            return
        self._producer = await start_producer(self._settings, linger_ms=0)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def set_aside(self, poison: Sequence[Poisoned]) -> None:
        """Produce each to the dead-letter topic and wait for the broker's acknowledgement.

        Acknowledged before the batch's offsets are committed past them, so
        a crash in between sends them again (at least once) and never loses
        one. Raises if the broker does not acknowledge: the caller retries.
        """
        if self._producer is not None:
            sent = [
                await self._producer.send(
                    self.topic,
                    record.value,
                    key=record.key,
                    headers=[
                        ("x-dlq-reason", error.reason.encode()),
                        ("x-dlq-detail", error.detail[:200].encode()),
                        ("x-original-topic", record.topic.encode()),
                        ("x-original-partition", str(record.partition).encode()),
                        ("x-original-offset", str(record.offset).encode()),
                    ],
                )
                for record, error in poison
            ]
            await asyncio.gather(*sent)
        for record, error in poison:
            DEAD_LETTERED.labels(self._source, error.reason).inc()
            log.warning(
                "poison message set aside",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "reason": error.reason,
                    "detail": error.detail,
                    "dead_letter_topic": self.topic,
                },
            )
