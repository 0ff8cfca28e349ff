"""The local-stack launchers, against the real servers they start (a few seconds in all)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from infra.devstack import procfs
from infra.devstack.__main__ import down
from infra.devstack.processes import (
    DevstackError,
    ManagedProcess,
    create_topics,
    ensure_database,
    ensure_ports_free,
    free_port,
    start_broker,
    start_postgres,
    start_python,
    start_redis,
)
from infra.devstack.stack import Ports, service_env
from infra.devstack.state import StateDir

SLEEPER = ["-c", "import time; time.sleep(60)"]


@pytest.fixture
def scratch() -> Iterator[Path]:
    # Under /tmp and searchable: as root, Postgres runs as `postgres` and must reach it.
    path = Path(tempfile.mkdtemp(prefix="devstack-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def launched() -> Iterator[list[ManagedProcess]]:
    """Processes a test started; all stopped afterwards, whatever the test did."""
    procs: list[ManagedProcess] = []
    yield procs
    for proc in reversed(procs):
        proc.stop()


def assert_all_gone(pids: set[int]) -> None:
    # A killed grandchild is reaped by init, not by us: give the kernel a moment.
    deadline = time.monotonic() + 5
    while [pid for pid in pids if procfs.running(pid)] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [pid for pid in pids if procfs.running(pid)] == []


def redis_ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


async def fetch_as(port: int, user: str, sql: str) -> object:
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user=user, database=user)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_postgres_serves_an_owned_database_and_keeps_it_across_restarts(scratch: Path) -> None:
    port = free_port()
    first = start_postgres(scratch / "pg", port, scratch / "pg.log")
    try:
        ensure_database(port, "app", "app", "secret")
        ensure_database(port, "app", "app", "secret")  # a second `up` does it again
        # Postgres 15 lets only the owner create tables in `public`.
        asyncio.run(fetch_as(port, "app", "CREATE TABLE kept AS SELECT 7 AS v"))
        backends = procfs.descendants([first.pid])
        assert len(backends) > 1
    finally:
        first.stop()
    assert_all_gone(backends)

    second = start_postgres(scratch / "pg", port, scratch / "pg.log")
    try:
        assert asyncio.run(fetch_as(port, "app", "SELECT v FROM kept")) == 7
    finally:
        second.stop()


def test_redis_answers_and_pausing_freezes_it(
    scratch: Path, launched: list[ManagedProcess]
) -> None:
    port = free_port()
    redis = start_redis(port, scratch / "redis", scratch / "redis.log")
    launched.append(redis)
    assert redis_ping(port).startswith(b"+PONG")

    redis.pause()
    with pytest.raises(TimeoutError):
        redis_ping(port)
    redis.resume()
    assert redis_ping(port).startswith(b"+PONG")

    assert redis.stop() == 0
    assert_all_gone({redis.pid})


async def partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return {topic["topic"]: len(topic["partitions"]) for topic in described}


def test_broker_creates_topics_and_tolerates_existing_ones(
    scratch: Path, launched: list[ManagedProcess]
) -> None:
    port = free_port()
    launched.append(start_broker(port, scratch / "broker.log"))
    bootstrap = f"127.0.0.1:{port}"

    create_topics(bootstrap, {"clicks": 3, "clicks.dlq": 1})
    create_topics(bootstrap, {"clicks": 3, "links": 2})  # after a restart of `up`, say

    counts = asyncio.run(partition_counts(bootstrap, ["clicks", "clicks.dlq", "links"]))
    assert counts == {"clicks": 3, "clicks.dlq": 1, "links": 2}


def test_a_taken_port_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DevstackError) as caught:
            ensure_ports_free({"redis": free_port(), "gateway": port})
    assert str(caught.value) == f"port {port} (gateway) is already in use"


def test_a_process_dying_at_startup_is_reported_with_its_log(scratch: Path) -> None:
    crash = ["-c", "print('settings are wrong'); raise SystemExit(3)"]
    ready_url = f"http://127.0.0.1:{free_port()}/readyz"
    with pytest.raises(DevstackError, match="crasher exited with code 3") as caught:
        start_python("crasher", crash, {}, scratch / "crasher.log", ready_url, timeout=10)
    assert "settings are wrong" in str(caught.value)


def test_stop_kills_a_stubborn_process_and_everything_it_started(
    scratch: Path, launched: list[ManagedProcess]
) -> None:
    stubborn = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "time.sleep(60)\n"
    )
    proc = start_python("stubborn", ["-c", stubborn], {}, scratch / "stubborn.log", None)
    launched.append(proc)
    deadline = time.monotonic() + 10
    while len(procfs.descendants([proc.pid])) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    family = procfs.descendants([proc.pid])
    assert len(family) == 2
    assert procfs.stack_rss_bytes([proc.pid]) > procfs.rss_bytes(proc.pid) > 0

    assert proc.stop(timeout=0.5) == -signal.SIGKILL
    assert_all_gone(family)


def test_down_stops_recorded_processes_but_not_a_reused_pid(
    scratch: Path, launched: list[ManagedProcess]
) -> None:
    state = StateDir(scratch / "state")
    sleeper = start_python("sleeper", SLEEPER, {}, state.log("sleeper"), None)
    launched.append(sleeper)
    state.record(sleeper)
    # A pid file whose PID now runs something else (this very test) must be left alone.
    reused = {"argv": ["not", "this"], "stop_signal": "SIGKILL", "url": "", "log": "",
              "started": 0.0, "leads_group": True}  # fmt: skip
    (state.root / "pids" / "old.pid").write_text(f"{os.getpid()}\n{json.dumps(reused)}\n")

    assert down(state) == 0

    assert not sleeper.alive()
    assert list((state.root / "pids").iterdir()) == []


def test_service_env_points_each_service_at_the_given_ports() -> None:
    ports = Ports.free()
    env = service_env(ports)
    assert env["link"]["LINK_PORT"] == str(ports.link)
    assert env["link"]["LINK_DATABASE_URL"].endswith(f"@127.0.0.1:{ports.postgres}/link")
    assert env["link"]["LINK_KAFKA_BOOTSTRAP_SERVERS"] == f"127.0.0.1:{ports.broker}"
    assert env["gateway"]["GATEWAY_LINK_SERVICE_URL"] == f"http://127.0.0.1:{ports.link}"
    assert len(set(ports.by_name().values())) == len(ports.by_name())


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs Postgres as another account")
def test_postgres_data_moves_out_of_a_directory_postgres_cannot_enter(scratch: Path) -> None:
    private = scratch / "private"
    private.mkdir(mode=0o700)

    with pytest.raises(DevstackError, match=f"{private} is not searchable"):
        start_postgres(private / "pg", free_port(), scratch / "pg.log")
    fallback = StateDir(private / ".devstack").postgres_data
    assert fallback.is_relative_to("/var/tmp")
    assert fallback == StateDir(private / ".devstack").postgres_data  # the same on every run
    # `make clean` deletes it with the rest of the state (StateDir.delete).
    fallback.mkdir(parents=True)
    (private / ".devstack" / "logs").mkdir(parents=True)
    assert StateDir(private / ".devstack").delete() == [private / ".devstack", fallback.parent]
    assert not fallback.parent.exists()
    assert not (private / ".devstack").exists()
