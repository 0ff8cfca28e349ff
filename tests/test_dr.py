"""Backup and restore on the session's real Postgres and broker.

The whole drill (``make dr-drill``) takes about a minute on its own stack;
these tests check its two mechanisms in a fraction of that: the snapshot
holds every database as of one instant, and the consumer groups can be put
back to the offsets recorded with it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from infra.devstack.processes import DevstackError, create_topics, free_port, start_postgres
from infra.devstack.stack import database_url
from infra.dr.commands import MANIFEST, SNAPSHOT, Target, backup
from infra.dr.offsets import commit_offsets, read_offsets
from infra.dr.snapshot import restore_data_dir
from tests.conftest import Infra

DATABASES = ("link", "users", "analytics", "webhooks")


async def _write(url: str, table: str, value: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f"CREATE TABLE IF NOT EXISTS {table} (value text)")
        await connection.execute(f"INSERT INTO {table} VALUES ($1)", value)
    finally:
        await connection.close()


async def _read(url: str, table: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        return [row["value"] for row in await connection.fetch(f"SELECT value FROM {table}")]
    finally:
        await connection.close()


async def _drop(url: str, table: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f"DROP TABLE IF EXISTS {table}")
    finally:
        await connection.close()


def _target(infra: Infra) -> Target:
    return Target(
        postgres_port=infra.ports.postgres,
        data_dir=infra.workdir / "pg",
        bootstrap=infra.bootstrap,
        link_cache_url=infra.redis_url,
    )


def test_restored_cluster_is_every_database_as_of_the_backup(infra: Infra) -> None:
    table = f"dr_{uuid.uuid4().hex[:8]}"
    live = {db: database_url(infra.ports, db) for db in DATABASES}
    backup_dir = infra.workdir / f"backup-{table}"
    try:
        for url in live.values():
            asyncio.run(_write(url, table, "before"))
        manifest = backup(backup_dir, _target(infra))
        for url in live.values():
            asyncio.run(_write(url, table, "after"))

        data_dir = infra.workdir / f"restored-{table}"
        restore_data_dir(backup_dir / SNAPSHOT, data_dir)
        port = free_port()
        server = start_postgres(data_dir, port, infra.workdir / f"{table}.log")
        try:
            restored = replace(infra.ports, postgres=port)
            for db in DATABASES:
                # Written before: there. Written after: not. In all of them at once.
                assert asyncio.run(_read(database_url(restored, db), table)) == ["before"], db
        finally:
            server.stop()
    finally:
        for url in live.values():
            asyncio.run(_drop(url, table))

    assert manifest["databases"] == sorted(DATABASES)
    assert manifest["wal_start"]
    # Both consuming services' groups: each commits after its write (infra/dr/commands.py).
    assert json.loads((backup_dir / MANIFEST).read_text())["consumer_offsets"].keys() == {
        "analytics",
        "analytics-links",
        "webhooks",
        "webhooks-links",
    }


def test_backup_and_restore_refuse_to_overwrite(infra: Infra, tmp_path: Path) -> None:
    occupied = infra.workdir / f"occupied-{uuid.uuid4().hex[:8]}"
    occupied.mkdir()
    (occupied / "something").write_text("not ours")
    with pytest.raises(DevstackError, match="already exists"):
        backup(occupied, _target(infra))
    with pytest.raises(DevstackError, match="not empty"):
        restore_data_dir(tmp_path, occupied)
    # The session's own server is running on its directory: never restored over.
    with pytest.raises(DevstackError, match="running"):
        restore_data_dir(tmp_path, infra.workdir / "pg")


async def _consume(bootstrap: str, topic: str, group: str, *, commit: bool) -> list[int]:
    """Offsets a fresh member of ``group`` reads (committing them if asked)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        for _ in range(60):  # joining a group takes a few seconds on tansu
            batch = await consumer.getmany(timeout_ms=500)
            if batch:
                if commit:
                    await consumer.commit()
                return sorted(r.offset for records in batch.values() for r in records)
        return []
    finally:
        await consumer.stop()


async def test_rewound_group_reads_again_from_the_recorded_offsets(infra: Infra) -> None:
    topic, group = f"dr-{uuid.uuid4().hex[:8]}", f"dr-group-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(create_topics, infra.bootstrap, {topic: 1})
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap)
    await producer.start()
    try:
        for i in range(6):
            await producer.send_and_wait(topic, str(i).encode())
    finally:
        await producer.stop()
    assert await _consume(infra.bootstrap, topic, group, commit=True) == list(range(6))

    recorded = await asyncio.to_thread(read_offsets, infra.bootstrap, {group: topic})
    assert recorded == {group: {f"{topic}:0": 6}}

    # An offset past the log's end belongs to a log the broker lost: a rewind
    # there would skip new events, so it is refused (and the group stays put).
    beyond = {group: {f"{topic}:0": 100}}
    assert await asyncio.to_thread(commit_offsets, infra.bootstrap, beyond) == {group: {}}
    assert await asyncio.to_thread(read_offsets, infra.bootstrap, {group: topic}) == recorded

    # As a restore does: put the group back to where an older backup saw it.
    rewind = {group: {f"{topic}:0": 2}}
    assert await asyncio.to_thread(commit_offsets, infra.bootstrap, rewind) == rewind
    assert await _consume(infra.bootstrap, topic, group, commit=False) == [2, 3, 4, 5]
