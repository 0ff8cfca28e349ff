"""Events into Kafka as record batches built here, one per partition.

``AIOKafkaProducer.send`` costs ~14 µs an event on this machine: a coroutine,
a partitioner call (murmur2 in pure Python), a future and a lookup in the
accumulator for every event. A click is one event per redirect, so on the
gateway's memory path that was a fifth of a redirect's CPU. aiokafka's batch
interface (``create_batch``, ``send_batch``) does the same work once per
batch: ~2.4 µs an event, measured side by side against the same broker.

What is kept from ``send``: the partition of a key is aiokafka's default
(murmur2 of the key over the sorted partitions, as Kafka's Java client), so
every event of one code lands on one partition, in order; a batch is at most
the producer's ``max_batch_size``; an event larger than that goes alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from opentelemetry.trace import SpanContext

from services.chassis.tracing_kafka import message_headers

__all__ = ["Partitions", "send_batches"]


class Event(Protocol):
    @property
    def key(self) -> bytes: ...
    @property
    def value(self) -> bytes: ...
    @property
    def context(self) -> SpanContext | None: ...


class Partitions:
    """The partition of a key, remembered: the same key (a popular code) comes back."""

    def __init__(self, max_keys: int = 10_000) -> None:
        self._max_keys = max_keys
        self._partitioner = DefaultPartitioner()
        self._known: tuple[int, ...] = ()
        self._of: dict[bytes, int] = {}

    def of(self, key: bytes, partitions: tuple[int, ...]) -> int:
        if partitions != self._known or len(self._of) >= self._max_keys:
            self._known, self._of = partitions, {}
        partition = self._of.get(key)
        if partition is None:
            available = list(partitions)
            partition = self._of[key] = self._partitioner(key, available, available)
        return partition


async def send_batches(
    producer: AIOKafkaProducer, topic: str, events: Sequence[Event], partitions: Partitions
) -> tuple[list[int], BaseException | None]:
    """Send ``events``; the indexes of those the broker did not acknowledge, and why.

    A failure before every batch was handed to the producer fails them all:
    some may still arrive, which at-least-once delivery allows (consumers
    deduplicate by event id).
    """
    try:
        known = tuple(sorted(await producer.partitions_for(topic)))
        open_batches: dict[int, tuple[Any, list[int]]] = {}
        sent: list[tuple[asyncio.Future[Any], list[int]]] = []
        for index, event in enumerate(events):
            partition = partitions.of(event.key, known)
            batch = open_batches.get(partition)
            headers = message_headers(event.context)
            if batch is None or not _append(batch[0], event, headers):
                if batch is not None:
                    sent.append((await _send(producer, topic, partition, batch[0]), batch[1]))
                batch = open_batches[partition] = (producer.create_batch(), [])
                _append(batch[0], event, headers)  # a first record always fits
            batch[1].append(index)
        for partition, (builder, indexes) in open_batches.items():
            sent.append((await _send(producer, topic, partition, builder), indexes))
        results = await asyncio.gather(*(future for future, _ in sent), return_exceptions=True)
    except Exception as exc:
        return list(range(len(events))), exc
    failed: list[int] = []
    error: BaseException | None = None
    for (_, indexes), result in zip(sent, results, strict=True):
        if isinstance(result, BaseException):
            failed += indexes
            error = error or result
    return sorted(failed), error


def _append(builder: Any, event: Event, headers: list[tuple[str, bytes]] | None) -> bool:
    return (
        builder.append(key=event.key, value=event.value, timestamp=None, headers=headers)
        is not None
    )


async def _send(
    producer: AIOKafkaProducer, topic: str, partition: int, builder: Any
) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = await producer.send_batch(builder, topic, partition=partition)
    return future
