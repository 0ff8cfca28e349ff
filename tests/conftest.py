"""Fixtures: the real system on free ports, started once per test session.

Postgres, Redis and the broker are real servers started by the same
launchers as ``make dev`` (infra.devstack); the link service and the gateway
run as real processes, exactly as the local stack runs them. Nothing here
touches the machine's own servers on their standard ports.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infra.devstack.processes import (
    ManagedProcess,
    create_topics,
    ensure_database,
    free_port,
    run_once,
    start_broker,
    start_postgres,
    start_python,
    start_redis,
)
from services.chassis.events import TOPICS


@dataclass(frozen=True)
class Infra:
    workdir: Path
    postgres_port: int
    redis_port: int
    broker_port: int

    @property
    def link_database_url(self) -> str:
        return f"postgresql://link:link@127.0.0.1:{self.postgres_port}/link"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    # Under /tmp: the postgres user must be able to reach its data dir.
    path = Path(tempfile.mkdtemp(prefix="shortener-tests-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def infra(workdir: Path) -> Iterator[Infra]:
    started: list[ManagedProcess] = []
    try:
        pg_port, redis_port, broker_port = free_port(), free_port(), free_port()
        started.append(start_postgres(workdir / "pg", pg_port, workdir / "postgres.log"))
        ensure_database(pg_port, "link", "link", "link")
        started.append(start_redis(redis_port, workdir / "redis", workdir / "redis.log"))
        started.append(start_broker(broker_port, workdir / "broker.log"))
        create_topics(f"127.0.0.1:{broker_port}", TOPICS)
        yield Infra(workdir, pg_port, redis_port, broker_port)
    finally:
        for process in reversed(started):
            process.stop()


def link_env(infra: Infra, port: int, **overrides: str) -> dict[str, str]:
    """The link service's environment, as the local stack sets it."""
    env = {
        "LINK_HOST": "127.0.0.1",
        "LINK_PORT": str(port),
        "LINK_DATABASE_URL": infra.link_database_url,
        "LINK_REDIS_URL": infra.redis_url,
        "LINK_KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
        "LINK_KAFKA_ENABLE_IDEMPOTENCE": "false",
        "LINK_PUBLIC_BASE_URL": "http://127.0.0.1:8000",
        "LINK_IP_HASH_KEY": "test-key",
        "LINK_LOG_LEVEL": "WARNING",
    }
    env.update({f"LINK_{k.upper()}": v for k, v in overrides.items()})
    return env


@contextmanager
def running_link_service(infra: Infra, **overrides: str) -> Iterator[str]:
    """A link service process; yields its base URL."""
    port = free_port()
    env = link_env(infra, port, **overrides)
    run_once(["-m", "services.link", "migrate"], env)
    url = f"http://127.0.0.1:{port}"
    process = start_python(
        f"link-{port}",
        ["-m", "services.link", "serve"],
        env,
        infra.workdir / f"link-{port}.log",
        ready_url=f"{url}/readyz",
    )
    try:
        yield url
    finally:
        process.stop()


@contextmanager
def running_gateway(infra: Infra, link_url: str, **overrides: str) -> Iterator[str]:
    """A gateway process in front of ``link_url``; yields its base URL."""
    port = free_port()
    env = {
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_LINK_SERVICE_URL": link_url,
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    env.update({f"GATEWAY_{k.upper()}": v for k, v in overrides.items()})
    url = f"http://127.0.0.1:{port}"
    process = start_python(
        f"gateway-{port}",
        ["-m", "gateway"],
        env,
        infra.workdir / f"gateway-{port}.log",
        ready_url=f"{url}/readyz",
    )
    try:
        yield url
    finally:
        process.stop()


@pytest.fixture(scope="session")
def link_url(infra: Infra) -> Iterator[str]:
    with running_link_service(infra) as url:
        yield url


@pytest.fixture(scope="session")
def gateway_url(infra: Infra, link_url: str) -> Iterator[str]:
    with running_gateway(infra, link_url) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, follow_redirects=False, timeout=10) as http:
        yield http
