"""Fixtures: the real system on free ports, started once per test session.

Postgres, Redis and the broker are real servers started by the same
launchers as ``make dev`` (infra.devstack); the link service and the gateway
run as real processes, exactly as the local stack runs them. Nothing here
touches the machine's own servers on their standard ports.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager
from dataclasses import dataclass, replace
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
from infra.devstack.stack import Ports, database_url, service_env
from services.chassis.events import TOPICS

# The `evidence` fixture, and the excerpts it prints after the run; the
# in-process link apps that redirect tests compare.
pytest_plugins = ["tests.evidence", "tests.link_apps", "tests.webhooks_fixtures"]


@dataclass(frozen=True)
class Infra:
    workdir: Path
    ports: Ports
    # The session's broker, for tests that pause it.
    broker: ManagedProcess

    @property
    def link_database_url(self) -> str:
        return database_url(self.ports, "link")

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports.redis}/0"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports.broker}"


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
        ports = Ports.free()
        started.append(start_postgres(workdir / "pg", ports.postgres, workdir / "postgres.log"))
        for database in ("link", "users", "analytics", "webhooks"):
            ensure_database(ports.postgres, database, database, database)
        started.append(start_redis(ports.redis, workdir / "redis", workdir / "redis.log"))
        broker = start_broker(ports.broker, workdir / "broker.log")
        started.append(broker)
        create_topics(f"127.0.0.1:{ports.broker}", TOPICS)
        yield Infra(workdir, ports, broker)
    finally:
        for process in reversed(started):
            process.stop()


def settings_for(infra: Infra, name: str, port: int, **overrides: str) -> dict[str, str]:
    """A service's environment as the local stack sets it, on ``port``, with overrides."""
    env = service_env(replace(infra.ports, **{name: port}))[name]
    prefix = name.upper() + "_"
    env.update({f"{prefix}LOG_LEVEL": "WARNING"})
    env.update({prefix + key.upper(): value for key, value in overrides.items()})
    return env


def start_service(
    infra: Infra, name: str, *, port: int = 0, **overrides: str
) -> tuple[str, ManagedProcess]:
    """A service process, migrated first, on a free port unless given: (its URL, it)."""
    port = port or free_port()
    env = settings_for(infra, name, port, **overrides)
    run_once(["-m", f"services.{name}", "migrate"], env)
    url = f"http://127.0.0.1:{port}"
    process = start_python(
        f"{name}-{port}",
        ["-m", f"services.{name}", "serve"],
        env,
        infra.workdir / f"{name}-{port}.log",
        ready_url=f"{url}/readyz",
    )
    return url, process


@contextmanager
def running_service(infra: Infra, name: str, *, port: int = 0, **overrides: str) -> Iterator[str]:
    """A service process for the duration of a ``with``; yields its URL."""
    url, process = start_service(infra, name, port=port, **overrides)
    try:
        yield url
    finally:
        process.stop()


def running_link_service(infra: Infra, *, port: int = 0, **overrides: str) -> ContextManager[str]:
    return running_service(infra, "link", port=port, **overrides)


@contextmanager
def running_gateway(
    infra: Infra,
    link_url: str,
    *,
    port: int = 0,
    settings: Mapping[str, str] | None = None,
    **overrides: str,
) -> Iterator[str]:
    """A gateway process in front of ``link_url``; yields its base URL."""
    port = port or free_port()
    settings = {**GENEROUS_LIMITS, **GATEWAY_TEST_SETTINGS, **(settings or {}), **overrides}
    env = settings_for(infra, "gateway", port, link_service_url=link_url, **settings)
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
    with running_link_service(infra, port=infra.ports.link) as url:
        yield url


@pytest.fixture(scope="session")
def analytics_url(infra: Infra) -> Iterator[str]:
    # On the port the session gateway routes stats to.
    with running_service(infra, "analytics", port=infra.ports.analytics) as url:
        yield url


@pytest.fixture(scope="session")
def user_url(infra: Infra) -> Iterator[str]:
    with running_service(infra, "user", port=infra.ports.user, **FAST_HASHING) as url:
        yield url


# Limits the whole suite, all from 127.0.0.1, stays under; tests of limits
# start their own gateway with small ones.
GENEROUS_LIMITS = {
    "ratelimit_auth": "100000/minute",
    "ratelimit_create": "100000/minute",
    "ratelimit_create_anonymous": "100000/minute",
    "ratelimit_redirect": "100000/minute",
    "ratelimit_api": "100000/minute",
}
# Tests observe the link service's own answers through the gateway (the
# redirect cache and the read model are tested where they are turned on:
# test_redirect_cache.py, test_read_model.py).
GATEWAY_TEST_SETTINGS = {"redirect_cache_seconds": "0", "redirect_read_model_url": ""}
# argon2id at its production cost takes 60-80 ms a hash; the suite hashes hundreds.
FAST_HASHING = {"argon2_time_cost": "1", "argon2_memory_cost_kib": "8192"}


@pytest.fixture(scope="session")
def gateway_url(infra: Infra, link_url: str, user_url: str) -> Iterator[str]:
    # On the port the link service's short URLs point at.
    with running_gateway(
        infra, link_url, port=infra.ports.gateway, user_service_url=user_url
    ) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, follow_redirects=False, timeout=10) as http:
        yield http
