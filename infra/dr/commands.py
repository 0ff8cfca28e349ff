"""``backup`` and ``restore``: what each does, in order, and what it writes.

A backup directory holds::

    pgdata/         the cluster snapshot (pg_basebackup, verified by pg_verifybackup)
    manifest.json   when, from where, the databases and their sizes, the WAL
                    position of the snapshot, and the consumer-group offsets

Redis is not backed up: db 0 is a cache and db 1 rate-limit windows, both
rebuilt by traffic; db 2 (unique-visitor HyperLogLogs) is kept on restore,
since a replayed click adds nothing to a HyperLogLog that saw it already.
The broker is not backed up either: its topics are a buffer between
services, and what the databases need from it is the position to resume
from, which the manifest carries (see ``offsets``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import redis
from aiokafka.errors import KafkaError

from infra.devstack.managed import DevstackError
from infra.devstack.stack import REPO_ROOT, SERVICES, Ports, service_env
from infra.devstack.state import StateDir
from infra.dr.offsets import Offsets, commit_offsets, read_offsets
from infra.dr.snapshot import base_backup, restore_data_dir, verify_backup
from services.chassis.events import CLICKS_TOPIC, LINKS_TOPIC

__all__ = ["MANIFEST", "Target", "backup", "restore", "restore_databases", "rewind_consumers"]

MANIFEST = "manifest.json"
SNAPSHOT = "pgdata"
# The consumer groups whose offsets a restored database is behind (the
# settings' defaults: analytics and webhooks each commit after their write),
# and the topic each reads.
GROUPS: Mapping[str, str] = MappingProxyType(
    {
        "analytics": CLICKS_TOPIC,
        "analytics-links": LINKS_TOPIC,
        "webhooks": CLICKS_TOPIC,
        "webhooks-links": LINKS_TOPIC,
    }
)


@dataclass(frozen=True)
class Target:
    """Where the stack's state lives: the running `make dev` stack unless told otherwise."""

    postgres_port: int
    data_dir: Path
    bootstrap: str
    link_cache_url: str  # the link service's Redis database (its cache and read model)
    groups: Mapping[str, str] = field(default_factory=lambda: GROUPS)

    @classmethod
    def for_stack(cls, ports: Ports, state: StateDir) -> Target:
        env = service_env(ports)
        return cls(
            postgres_port=ports.postgres,
            data_dir=state.postgres_data,
            bootstrap=env["link"]["LINK_KAFKA_BOOTSTRAP_SERVERS"],
            link_cache_url=env["link"]["LINK_REDIS_URL"],
        )

    @classmethod
    def devstack(cls) -> Target:
        return cls.for_stack(Ports.from_env(), StateDir(REPO_ROOT / ".devstack"))


def backup(directory: Path, target: Target) -> dict[str, Any]:
    """Snapshot every service's database at one instant into ``directory``; the manifest."""
    if directory.exists() and any(directory.iterdir()):
        raise DevstackError(f"{directory} already exists and is not empty; pick a new directory")
    started = time.monotonic()
    # First the offsets, then the snapshot: the snapshot then holds at least
    # every event below them (offsets are committed after the write).
    try:
        offsets, broker = read_offsets(target.bootstrap, target.groups), "offsets recorded"
    except (KafkaError, OSError) as exc:
        # The databases matter more than the offsets: back them up anyway,
        # and say that a restore of this backup cannot replay the clicks.
        offsets, broker = {}, f"unreachable, offsets not recorded: {exc!r}"
    base_backup(target.postgres_port, directory / SNAPSHOT)
    verify_backup(directory / SNAPSHOT)
    label = (directory / SNAPSHOT / "backup_label").read_text()
    manifest = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 2),
        "postgres_port": target.postgres_port,
        "databases": sorted(spec.database for spec in SERVICES if spec.database),
        "snapshot_bytes": sum(p.stat().st_size for p in (directory / SNAPSHOT).rglob("*")),
        "wal_start": _label_field(label, "START WAL LOCATION"),
        "broker": broker,
        "consumer_offsets": offsets,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _label_field(label: str, name: str) -> str:
    for line in label.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise DevstackError(f"backup_label has no {name!r}")


def restore(directory: Path, target: Target, *, rewind: bool = True) -> list[str]:
    """Put a backup back, with Postgres and the analytics service stopped; what was done.

    Start Postgres and the services afterwards; they need nothing else.
    """
    done = restore_databases(directory, target)
    if rewind:
        try:
            rewound = rewind_consumers(directory, target)
        except (KafkaError, OSError) as exc:
            done.append(
                f"offsets NOT rewound, broker unreachable ({exc!r}): clicks since the "
                "backup are counted only if the broker kept them and this is rerun"
            )
        else:
            done.append(f"offsets rewound: {rewound}")
    return done


def restore_databases(directory: Path, target: Target) -> list[str]:
    """The data directory becomes the snapshot (Postgres stopped); the link cache is emptied.

    The cache may hold links created after the backup, which the restored
    database no longer has: it would go on redirecting them (for up to the
    cache TTL) as if nothing was lost, and hide the loss from every check.
    A Redis that is down is fine when it keeps nothing on disk (the local
    stack's does not): it comes back empty.
    """
    restore_data_dir(directory / SNAPSHOT, target.data_dir)
    done = [f"snapshot restored into {target.data_dir}"]
    try:
        with redis.Redis.from_url(target.link_cache_url, socket_timeout=5) as cache:
            cache.flushdb()
    except redis.ConnectionError:
        done.append("link cache NOT emptied (Redis unreachable): empty it before serving")
    else:
        done.append("link cache emptied")
    return done


def rewind_consumers(directory: Path, target: Target) -> Offsets:
    """Put the consumer groups back at the offsets recorded with the backup (consumers stopped).

    Clicks made after the backup are then read again and counted once. It
    needs only the broker, not Postgres: redirects can be served again before
    (the clicks wait on the topic meanwhile). Partitions whose log is now
    shorter than the recorded offset (a broker that lost its topics) are left
    alone: a rewind there would skip the new events. Returns what it committed.
    """
    offsets: Offsets = json.loads((directory / MANIFEST).read_text())["consumer_offsets"]
    return commit_offsets(target.bootstrap, offsets)
