"""The whole system on 127.0.0.1: which processes, on which ports, with which settings.

Adding a service means adding a port to ``Ports`` and its settings
(environment.py), and a ``ServiceSpec`` to ``SERVICES``; the start order,
databases, migrations, readiness checks, pid files and the table printed by
``up`` all follow from those. The pytest fixtures reuse ``Ports.free()``,
``service_env`` and ``start_stack``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from infra.devstack.environment import (
    INTERNAL_AUTH_KEY,
    Ports,
    analytics_env,
    database_url,
    gateway_env,
    link_env,
    user_env,
    webhooks_env,
)
from infra.devstack.migrations import at_head
from infra.devstack.processes import (
    LOCALHOST,
    ManagedProcess,
    create_topics,
    ensure_database,
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
    "INTERNAL_AUTH_KEY",
    "REPO_ROOT",
    "SERVICES",
    "TOPICS",
    "Ports",
    "ServiceSpec",
    "database_url",
    "infra_urls",
    "launch_service",
    "scrape_targets",
    "service_env",
    "stack_rss_bytes",
    "start_stack",
    "stop_stack",
]

REPO_ROOT = Path(__file__).resolve().parents[2]

ENTRYPOINT = "gateway"
"""The one service users talk to; its URL and /docs are printed by ``up``."""


@dataclass(frozen=True)
class ServiceSpec:
    """One process of our Python services, run as ``python -m <module> <serve...>``."""

    name: str  # its log and its pid file; its field in Ports unless ``port`` says
    module: str
    env: Callable[[Ports], dict[str, str]]
    serve: tuple[str, ...] = ()
    migrate: tuple[str, ...] | None = None  # run to completion before serve
    database: str | None = None  # role, password and database share this name
    port: str = ""  # the field in Ports this process alone answers on, if not ``name``

    @property
    def service(self) -> str:
        """The service it is a process of: its Prometheus job, its settings' name."""
        return self.module.rpartition(".")[2]

    def own_port(self, ports: Ports) -> int:
        return ports.by_name()[self.port or self.name]

    def url(self, ports: Ports) -> str:
        """Where this process, and no other, answers."""
        return f"http://{LOCALHOST}:{self.own_port(ports)}"

    def process_env(self, ports: Ports) -> dict[str, str]:
        """The service's settings, and the port this process answers on alone
        where it shares the service's port with other replicas."""
        env = self.env(ports)
        if self.port:
            env[f"{self.service.upper()}_OWN_PORT"] = str(self.own_port(ports))
        return env


SERVICES: tuple[ServiceSpec, ...] = (
    # In start order: each service only calls those above it.
    ServiceSpec(
        "link", "services.link", link_env, ("serve",), migrate=("migrate",), database="link"
    ),
    ServiceSpec(
        "user", "services.user", user_env, ("serve",), migrate=("migrate",), database="users"
    ),
    ServiceSpec(
        "analytics",
        "services.analytics",
        analytics_env,
        ("serve",),
        migrate=("migrate",),
        database="analytics",
    ),
    ServiceSpec(
        "webhooks",
        "services.webhooks",
        webhooks_env,
        ("serve",),
        migrate=("migrate",),
        database="webhooks",
    ),
    # Two replicas, as compose and Kubernetes run it, on one port (SO_REUSEPORT:
    # the kernel spreads connections over them) and each on its own
    # (docs/adr/0019-the-local-gateway-runs-two-replicas.md).
    ServiceSpec("gateway", "gateway", gateway_env, port="gateway_1"),
    ServiceSpec("gateway-2", "gateway", gateway_env, port="gateway_2"),
)


def service_env(ports: Ports) -> dict[str, dict[str, str]]:
    """Each service's settings for ``ports``, under the names compose and Kubernetes use
    too; a gateway replica adds its own port (``ServiceSpec.process_env``)."""
    return {spec.service: spec.env(ports) for spec in SERVICES}


def scrape_targets(
    ports: Ports, services: Sequence[ServiceSpec] = SERVICES
) -> dict[str, list[int]]:
    """Prometheus's jobs: each service, with the own port of every process of it."""
    targets: dict[str, list[int]] = {}
    for spec in services:
        targets.setdefault(spec.service, []).append(spec.own_port(ports))
    return targets


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
            targets = scrape_targets(ports, services)
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
    """Run the service's migrations unless its database is at their head already."""
    if spec.migrate is None:
        return
    if spec.database is not None and at_head(spec.module, ports.postgres, spec.database):
        return
    run_once(["-m", spec.module, *spec.migrate], spec.env(ports), cwd=REPO_ROOT)


def launch_service(spec: ServiceSpec, ports: Ports, state: StateDir) -> ManagedProcess:
    """Start one service process of the stack, logging to its file in ``state``; not awaited."""
    args = ["-m", spec.module, *spec.serve]
    env = spec.process_env(ports)
    return start_python(spec.name, args, env, state.log(spec.name), None, cwd=REPO_ROOT)


def stop_stack(started: Sequence[ManagedProcess], state: StateDir) -> list[tuple[str, int]]:
    """Stop in reverse start order, so nothing outlives what it depends on; (name, exit code)."""
    codes = []
    for proc in reversed(started):
        codes.append((proc.name, proc.stop()))
        state.forget(proc.name)
    return codes
