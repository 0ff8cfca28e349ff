"""The throughput half of chaos/webhooks.py: a burst of link events, deliveries timed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaProducer

from chaos.receiver import Receiver
from infra.devstack.stack import Ports
from services.chassis.events import LINKS_TOPIC, LinkChanged

__all__ = ["burst", "publish_links"]


async def _publish(bootstrap: str, owner_id: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for _ in range(count):
            code = "chaos-" + uuid.uuid4().hex[:10]
            event = LinkChanged(
                event_id=uuid.uuid4().hex,
                type="link.created",
                code=code,
                owner_id=owner_id,
                url="https://example.com/burst",
                expires_at=None,
                redirect_type=302,
                occurred_at=datetime.now(UTC),
            )
            await producer.send(LINKS_TOPIC, orjson.dumps(event), key=code.encode())
        await producer.flush()
    finally:
        await producer.stop()


def publish_links(ports: Ports, owner_id: str, count: int) -> int:
    """``count`` link.created events of ``owner_id`` on the links topic, at once."""
    asyncio.run(_publish(f"127.0.0.1:{ports.broker}", owner_id, count))
    return count


def burst(receivers: Sequence[Receiver], publish: Callable[[], int]) -> list[str]:
    """Deliveries per second to each receiver and in all, for one published burst."""
    for receiver in receivers:
        receiver.up()
    try:
        count = publish()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if all(len(r.ledger.arrivals) >= count for r in receivers):
                break
            time.sleep(0.1)
    finally:
        for receiver in receivers:
            receiver.down()
    lines, first, last, total = [], [], [], 0
    for i, receiver in enumerate(receivers, 1):
        times = [t for t, _ in receiver.ledger.arrivals]
        if len(times) < 2:
            lines.append(f"endpoint {i}: {len(times)} of {count} deliveries")
            continue
        span = times[-1] - times[0]
        first.append(times[0])
        last.append(times[-1])
        total += len(times)
        lines.append(
            f"endpoint {i}: {len(times)} of {count} deliveries in {span:.1f} s,"
            f" {len(times) / span:.0f}/s (2 in flight at a time)"
        )
    if first:
        span = max(last) - min(first)
        lines.append(f"in all: {total} deliveries in {span:.1f} s, {total / span:.0f}/s")
    return lines
