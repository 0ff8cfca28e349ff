"""Events sent as batches built here land where ``producer.send`` would put them.

Against the session's broker: the same keys sent both ways to two topics of
four partitions must land on the same partitions, each key's events in the
order given; a batch the producer cannot hold is cut in two; a failure
reports every event it concerns.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from infra.devstack.processes import create_topics
from services.chassis.kafka import OutgoingEvent
from services.chassis.kafka_batches import Partitions, send_batches
from tests.conftest import Infra

PARTITIONS = 4


async def _topics(infra: Infra, *names: str) -> None:
    # create_topics runs a loop of its own: not on this one.
    await asyncio.to_thread(create_topics, infra.bootstrap, dict.fromkeys(names, PARTITIONS))


async def _read(bootstrap: str, topic: str, expected: int) -> dict[int, list[tuple[bytes, bytes]]]:
    """partition -> (key, value) in offset order, once ``expected`` records are in."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        found: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        for _ in range(100):
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                found[tp.partition] += [(r.key, r.value) for r in records]
            if sum(map(len, found.values())) >= expected:
                break
        return found
    finally:
        await consumer.stop()


async def _producer(infra: Infra, **options: Any) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap, acks="all", **options)
    await producer.start()
    return producer


def _events(keys: int, per_key: int) -> list[OutgoingEvent]:
    return [
        OutgoingEvent(f"code-{k}".encode(), f"{k}:{n}".encode())
        for n in range(per_key)
        for k in range(keys)
    ]


async def test_batches_land_where_send_puts_them_in_order(infra: Infra) -> None:
    by_send, by_batch = f"t-send-{uuid.uuid4().hex}", f"t-batch-{uuid.uuid4().hex}"
    await _topics(infra, by_send, by_batch)
    events = _events(keys=40, per_key=5)
    producer = await _producer(infra)
    try:
        futures = [await producer.send(by_send, e.value, key=e.key) for e in events]
        await asyncio.gather(*futures)
        failed, error = await send_batches(producer, by_batch, events, Partitions())
    finally:
        await producer.stop()
    assert (failed, error) == ([], None)
    sent = await _read(infra.bootstrap, by_send, len(events))
    batched = await _read(infra.bootstrap, by_batch, len(events))
    assert batched == sent
    assert len(batched) > 1  # the keys were spread, so the check above means something
    for records in batched.values():
        for key in {k for k, _ in records}:
            values = [v for k, v in records if k == key]
            assert values == sorted(values, key=lambda v: int(v.split(b":")[1]))


async def test_a_full_batch_is_sent_and_a_new_one_started(infra: Infra) -> None:
    topic = f"t-full-{uuid.uuid4().hex}"
    await _topics(infra, topic)
    # 1 KiB batches: a few events each; one event of 4 KiB goes alone.
    events = [OutgoingEvent(b"one-key", bytes([65 + n % 26]) * 300) for n in range(30)]
    events.append(OutgoingEvent(b"one-key", b"z" * 4096))
    producer = await _producer(infra, max_batch_size=1024)
    try:
        assert await send_batches(producer, topic, events, Partitions()) == ([], None)
    finally:
        await producer.stop()
    found = await _read(infra.bootstrap, topic, len(events))
    assert [v for records in found.values() for _, v in records] == [e.value for e in events]


async def test_a_failure_reports_every_event(infra: Infra) -> None:
    producer = await _producer(infra)
    await producer.stop()  # a closed producer refuses every batch
    failed, error = await send_batches(producer, "clicks", _events(3, 2), Partitions())
    assert failed == list(range(6))
    assert error is not None


@pytest.mark.parametrize("count", [1, 3])
def test_partitions_are_remembered_per_key_and_forgotten_when_they_change(count: int) -> None:
    partitions = Partitions(max_keys=2)
    first = partitions.of(b"abc", tuple(range(count)))
    assert first == partitions.of(b"abc", tuple(range(count)))
    assert 0 <= first < count
    assert partitions.of(b"abc", (7,)) == 7  # the topic's partitions changed
