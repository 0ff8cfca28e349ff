"""The whole system on 127.0.0.1: which processes, on which ports, with which settings.

Adding a service means adding a port to ``Ports`` and a ``ServiceSpec`` to
``SERVICES``; the start order, databases, migrations, readiness checks, pid files
and the table printed by ``up`` all follow from those two lists. The pytest
fixtures reuse ``Ports.free()``, ``service_env`` and ``start_stack``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from infra.devstack.processes import (
    LOCALHOST,
    DevstackError,
    ManagedProcess,
    create_topics,
    ensure_database,
    free_port,
    run_once,
    start_broker,
    start_postgres,
    start_python,
    start_redis,
    wait_http_ready,
)
from infra.devstack.procfs import stack_rss_bytes
from infra.devstack.prometheus import start_prometheus
from infra.devstack.state import StateDir

# Topic -> partitions, from the event contracts, the one table every environment reads.
# The broker keeps nothing across restarts, so every start creates them.
from services.chassis.events import TOPICS

__all__ = [
    "ENTRYPOINT",
    "REPO_ROOT",
    "SERVICES",
    "TOPICS",
    "Ports",
    "ServiceSpec",
    "database_url",
    "infra_urls",
    "launch_service",
    "service_env",
    "stack_rss_bytes",
    "start_stack",
    "stop_stack",
]

REPO_ROOT = Path(__file__).resolve().parents[2]

ENTRYPOINT = "gateway"
"""The one service users talk to; its URL and /docs are printed by ``up``."""


@dataclass(frozen=True)
class Ports:
    """Every port the stack listens on; the field name is the process name."""

    postgres: int = 55432  # beside, not on, a system Postgres (5432) and Redis (6379)
    redis: int = 56379
    broker: int = 59092
    gateway: int = 8000
    link: int = 8001
    user: int = 8002
    analytics: int = 8003
    webhooks: int = 8004
    prometheus: int = 59090  # beside, not on, a system Prometheus (9090)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Ports:
        """The defaults, each overridable by ``DEVSTACK_<NAME>_PORT``."""
        chosen: dict[str, int] = {}
        for field in fields(cls):
            variable = f"DEVSTACK_{field.name.upper()}_PORT"
            try:
                chosen[field.name] = int(environ.get(variable, str(field.default)))
            except ValueError:
                raise DevstackError(f"{variable} must be a port number") from None
        return cls(**chosen)

    @classmethod
    def free(cls) -> Ports:
        """Distinct ports nobody listens on now, for tests that run beside `make dev`."""
        chosen: set[int] = set()
        while len(chosen) < len(fields(cls)):
            chosen.add(free_port())
        return cls(*sorted(chosen))

    def by_name(self) -> dict[str, int]:
        return asdict(self)


def database_url(ports: Ports, name: str) -> str:
    """Local credentials are the database name three times: nothing here is secret."""
    return f"postgresql://{name}:{name}@{LOCALHOST}:{ports.postgres}/{name}"


# The key the gateway signs identities with. Fixed and public: it guards
# nothing but a local stack on 127.0.0.1. Compose and Kubernetes generate theirs.
INTERNAL_AUTH_KEY = "devstack-local-internal-auth-key"
IP_HASH_KEY = "devstack-local-only"


def _link_env(ports: Ports) -> dict[str, str]:
    return {
        "INTERNAL_AUTH_KEY": INTERNAL_AUTH_KEY,
        # Other OTEL_* variables pass through from the shell; tracing stays off
        # unless one of them names an endpoint (docs/observability-tracing.md).
        "OTEL_SERVICE_NAME": "link",
        "LINK_HOST": LOCALHOST,
        "LINK_PORT": str(ports.link),
        "LINK_DATABASE_URL": database_url(ports, "link"),
        "LINK_REDIS_URL": f"redis://{LOCALHOST}:{ports.redis}/0",
        "LINK_KAFKA_BOOTSTRAP_SERVERS": f"{LOCALHOST}:{ports.broker}",
        # tansu answers InitProducerId with UnknownError: an idempotent producer cannot start.
        "LINK_KAFKA_ENABLE_IDEMPOTENCE": "false",
        "LINK_PUBLIC_BASE_URL": f"http://{LOCALHOST}:{ports.gateway}",
        # Fixed, so a visitor keeps one id across restarts, as the kept database expects.
        "LINK_IP_HASH_KEY": IP_HASH_KEY,
    }


def _user_env(ports: Ports) -> dict[str, str]:
    return {
        "INTERNAL_AUTH_KEY": INTERNAL_AUTH_KEY,
        "OTEL_SERVICE_NAME": "user",
        "USER_HOST": LOCALHOST,
        "USER_PORT": str(ports.user),
        "USER_DATABASE_URL": database_url(ports, "users"),
    }


def _analytics_env(ports: Ports) -> dict[str, str]:
    return {
        "INTERNAL_AUTH_KEY": INTERNAL_AUTH_KEY,
        "OTEL_SERVICE_NAME": "analytics",
        "ANALYTICS_HOST": LOCALHOST,
        "ANALYTICS_PORT": str(ports.analytics),
        "ANALYTICS_DATABASE_URL": database_url(ports, "analytics"),
        # Unique visitors (HyperLogLog); db 0 is the link cache, db 1 rate limits.
        "ANALYTICS_REDIS_URL": f"redis://{LOCALHOST}:{ports.redis}/2",
        "ANALYTICS_KAFKA_BOOTSTRAP_SERVERS": f"{LOCALHOST}:{ports.broker}",
        "ANALYTICS_KAFKA_ENABLE_IDEMPOTENCE": "false",
    }


def _webhooks_env(ports: Ports) -> dict[str, str]:
    return {
        "INTERNAL_AUTH_KEY": INTERNAL_AUTH_KEY,
        "OTEL_SERVICE_NAME": "webhooks",
        "WEBHOOKS_HOST": LOCALHOST,
        "WEBHOOKS_PORT": str(ports.webhooks),
        "WEBHOOKS_DATABASE_URL": database_url(ports, "webhooks"),
        "WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": f"{LOCALHOST}:{ports.broker}",
        "WEBHOOKS_KAFKA_ENABLE_IDEMPOTENCE": "false",
        # Receivers on this machine (docs/examples/webhook_receiver.py) are
        # reachable; every other private range stays refused.
        "WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8",
    }


def _gateway_env(ports: Ports) -> dict[str, str]:
    return {
        "INTERNAL_AUTH_KEY": INTERNAL_AUTH_KEY,
        "OTEL_SERVICE_NAME": "gateway",
        "GATEWAY_HOST": LOCALHOST,
        "GATEWAY_PORT": str(ports.gateway),
        "GATEWAY_LINK_SERVICE_URL": f"http://{LOCALHOST}:{ports.link}",
        "GATEWAY_USER_SERVICE_URL": f"http://{LOCALHOST}:{ports.user}",
        "GATEWAY_ANALYTICS_SERVICE_URL": f"http://{LOCALHOST}:{ports.analytics}",
        "GATEWAY_WEBHOOKS_SERVICE_URL": f"http://{LOCALHOST}:{ports.webhooks}",
        "GATEWAY_REDIS_URL": f"redis://{LOCALHOST}:{ports.redis}/1",
        # A rolling restart starts the new gateway beside the old (supervisor.py).
        "GATEWAY_REUSE_PORT": "true",
        # The gateway publishes the clicks of redirects it replays while the
        # link service is down (gateway/stale.py), hashed with the same key.
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": f"{LOCALHOST}:{ports.broker}",
        "GATEWAY_KAFKA_ENABLE_IDEMPOTENCE": "false",
        "GATEWAY_IP_HASH_KEY": IP_HASH_KEY,
    }


@dataclass(frozen=True)
class ServiceSpec:
    """One of our Python services, run as ``python -m <module> <serve...>``."""

    name: str  # also its field in Ports, its log and its pid file
    module: str
    env: Callable[[Ports], dict[str, str]]
    serve: tuple[str, ...] = ()
    migrate: tuple[str, ...] | None = None  # run to completion before serve
    database: str | None = None  # role, password and database share this name

    def url(self, ports: Ports) -> str:
        return f"http://{LOCALHOST}:{ports.by_name()[self.name]}"


SERVICES: tuple[ServiceSpec, ...] = (
    # In start order: each service only calls those above it.
    ServiceSpec(
        "link", "services.link", _link_env, ("serve",), migrate=("migrate",), database="link"
    ),
    ServiceSpec(
        "user", "services.user", _user_env, ("serve",), migrate=("migrate",), database="users"
    ),
    ServiceSpec(
        "analytics",
        "services.analytics",
        _analytics_env,
        ("serve",),
        migrate=("migrate",),
        database="analytics",
    ),
    ServiceSpec(
        "webhooks",
        "services.webhooks",
        _webhooks_env,
        ("serve",),
        migrate=("migrate",),
        database="webhooks",
    ),
    ServiceSpec("gateway", "gateway", _gateway_env),
)


def service_env(ports: Ports) -> dict[str, dict[str, str]]:
    """Each service's settings for ``ports``, under the names compose and Kubernetes use too."""
    return {spec.name: spec.env(ports) for spec in SERVICES}


def infra_urls(ports: Ports) -> dict[str, str]:
    return {
        "postgres": f"postgresql://{LOCALHOST}:{ports.postgres}",
        "redis": f"redis://{LOCALHOST}:{ports.redis}",
        "broker": f"{LOCALHOST}:{ports.broker}",
    }


def start_stack(
    ports: Ports,
    state: StateDir,
    services: Sequence[ServiceSpec] = SERVICES,
    *,
    monitoring: bool = False,
) -> list[ManagedProcess]:
    """Start Postgres, Redis, the broker, then ``services`` in order, each once ready.

    ``monitoring`` adds Prometheus scraping every service, where it is installed
    (``make dev`` asks for it; benchmarks do not, so it takes no CPU from them).

    Each process is recorded in ``state`` as it starts. On any failure, Ctrl-C
    included, what was started is stopped again before the exception propagates.
    """
    started: list[ManagedProcess] = []
    urls = infra_urls(ports)

    def keep(proc: ManagedProcess, url: str) -> None:
        started.append(proc)
        state.record(proc, url)

    try:
        keep(
            start_postgres(state.postgres_data, ports.postgres, state.log("postgres")),
            urls["postgres"],
        )
        for spec in services:
            if spec.database is not None:
                ensure_database(ports.postgres, spec.database, spec.database, spec.database)
        keep(start_redis(ports.redis, state.redis_data, state.log("redis")), urls["redis"])
        keep(start_broker(ports.broker, state.log("broker")), urls["broker"])
        create_topics(urls["broker"], TOPICS)
        # Migrations of different services touch different databases: run them side by side.
        with ThreadPoolExecutor() as pool:
            list(pool.map(lambda spec: _migrate(spec, ports), services))
        # Start every service at once, since importing one takes seconds of CPU, then
        # wait for each in order (a service reports ready once those it calls are).
        launched: list[ManagedProcess] = []
        for spec in services:
            launched.append(launch_service(spec, ports, state))
            keep(launched[-1], spec.url(ports))
        for proc, spec in zip(launched, services, strict=True):
            wait_http_ready(proc, f"{spec.url(ports)}/readyz")
        if monitoring:
            targets = {spec.name: ports.by_name()[spec.name] for spec in services}
            prom = start_prometheus(
                ports.prometheus, targets, state.root / "prometheus", state.log("prometheus")
            )
            if prom is not None:
                keep(prom, f"http://{LOCALHOST}:{ports.prometheus}")
    except BaseException:
        stop_stack(started, state)
        raise
    return started


def _migrate(spec: ServiceSpec, ports: Ports) -> None:
    if spec.migrate is not None:
        run_once(["-m", spec.module, *spec.migrate], spec.env(ports), cwd=REPO_ROOT)


def launch_service(spec: ServiceSpec, ports: Ports, state: StateDir) -> ManagedProcess:
    """Start one service process of the stack, logging to its file in ``state``; not awaited."""
    args = ["-m", spec.module, *spec.serve]
    return start_python(spec.name, args, spec.env(ports), state.log(spec.name), None, cwd=REPO_ROOT)


def stop_stack(started: Sequence[ManagedProcess], state: StateDir) -> list[tuple[str, int]]:
    """Stop in reverse start order, so nothing outlives what it depends on; (name, exit code)."""
    codes = []
    for proc in reversed(started):
        codes.append((proc.name, proc.stop()))
        state.forget(proc.name)
    return codes
