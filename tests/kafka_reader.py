"""Reading click events back from the broker in tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.chassis.events import CLICKS_TOPIC


def read_clicks(bootstrap: str, code: str, expected: int, timeout: float = 20.0) -> list[Any]:
    """Every click event for ``code`` on the broker, once ``expected`` have arrived.

    Partitions are assigned by hand (no consumer group): no join delay, and
    every event from the beginning of the topic is seen.
    """

    async def read() -> list[Any]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(CLICKS_TOPIC) or set()
            assigned = [TopicPartition(CLICKS_TOPIC, p) for p in partitions]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            found: list[Any] = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=200)
                for messages in batches.values():
                    # Keyed by code: other links' events (and other tests' poison
                    # messages) are never decoded.
                    found += [orjson.loads(m.value) for m in messages if m.key == code.encode()]
                if len(found) >= expected:
                    # A little longer, to catch events that should not be there.
                    extra = await consumer.getmany(timeout_ms=300)
                    for messages in extra.values():
                        found += [
                            e for m in messages if (e := orjson.loads(m.value))["code"] == code
                        ]
                    return found
            return found
        finally:
            await consumer.stop()

    return asyncio.run(read())
