"""Consumer-group offsets: recorded with a backup, put back with a restore.

The analytics service commits a batch's offsets to the broker only after
the batch is in its database. A restored analytics database is older than
the offsets the broker holds: without help, the consumers would resume
after events the restored tables never saw, and those clicks would be lost.
So a backup records the groups' committed offsets *before* the snapshot
starts (each is then at or behind what the snapshot holds), and a restore
commits them back while the consumers are stopped. The events from there on
are delivered again; those the snapshot already counted are skipped by
event id (``processed_events``), the rest are counted. No click still on
the broker is lost, none is counted twice.

The rewind joins the group as its only member and commits as that member.
Kafka would also take a commit from outside an empty group; tansu (the
local broker) refuses one (UnknownMemberId), and joining works on both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["Offsets", "commit_offsets", "read_offsets"]

# group -> "topic:partition" -> next offset to read (JSON-friendly keys).
Offsets = dict[str, dict[str, int]]


def read_offsets(bootstrap: str, groups: Mapping[str, str]) -> Offsets:
    """The committed offsets of each group (group -> its topic); none if it never committed."""
    return asyncio.run(_read(bootstrap, groups))


async def _read(bootstrap: str, groups: Mapping[str, str]) -> Offsets:
    found: Offsets = {}
    for group, topic in groups.items():
        # Assigned by hand, not subscribed: reading offsets must not join the group.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        try:
            await consumer.start()  # a failed start still needs the stop below
            await consumer.topics()  # loads the partition metadata
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            consumer.assign(partitions)
            positions = {tp: await consumer.committed(tp) for tp in sorted(partitions)}
        finally:
            await consumer.stop()
        found[group] = {
            f"{tp.topic}:{tp.partition}": offset
            for tp, offset in positions.items()
            if offset is not None
        }
    return found


def commit_offsets(bootstrap: str, offsets: Offsets, timeout: float = 60) -> Offsets:
    """Commit ``offsets`` for each group (its members stopped); those committed.

    An offset past the end of its partition's log is not committed: the
    broker lost the log it belonged to, and committing it would make the
    consumers skip that many new events.
    """
    return asyncio.run(_commit(bootstrap, offsets, timeout))


async def _commit(bootstrap: str, offsets: Offsets, seconds: float) -> Offsets:
    committed: Offsets = {}
    for group, positions in offsets.items():
        wanted = {_partition(name): offset for name, offset in positions.items()}
        ends = await _log_ends(bootstrap, list(wanted))
        parsed = {tp: offset for tp, offset in wanted.items() if offset <= ends.get(tp, -1)}
        committed[group] = {f"{tp.topic}:{tp.partition}": o for tp, o in parsed.items()}
        if not parsed:
            continue
        topics = sorted({tp.topic for tp in parsed})
        consumer = AIOKafkaConsumer(
            *topics, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        try:
            await consumer.start()  # a failed start still needs the stop below
            deadline = time.monotonic() + seconds
            # Polling drives the join; what it fetches is never committed.
            while not set(parsed) <= consumer.assignment():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"group {group} still has other members: stop them first")
                await consumer.getmany(timeout_ms=200, max_records=1)
            await consumer.commit(parsed)
        finally:
            await consumer.stop()
    return committed


async def _log_ends(bootstrap: str, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The next offset each partition will write (partitions the broker lacks are left out)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        await consumer.start()
        await consumer.topics()
        known = [
            tp
            for tp in partitions
            if tp.partition in (consumer.partitions_for_topic(tp.topic) or ())
        ]
        return dict(await consumer.end_offsets(known)) if known else {}
    finally:
        await consumer.stop()


def _partition(name: str) -> TopicPartition:
    topic, _, partition = name.rpartition(":")
    return TopicPartition(topic, int(partition))
