"""Keeping the local stack up: a process that dies is started again.

What compose's ``restart: unless-stopped`` and a Kubernetes Deployment do
for their processes, ``make dev`` does here, so the chaos suite (chaos/) can
kill any piece and watch the system heal, and measure how long it takes.

A process may be held down on purpose (``StateDir.hold``): the chaos suite
does that to keep a killed piece away for the length of its fault.

A process that keeps dying (``max_restarts`` within ``window_seconds``) is
a bug, not a fault: the supervisor gives up and the stack stops, with the
process's log tail, as before.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from infra.devstack.managed import (
    LOCALHOST,
    DevstackError,
    ManagedProcess,
    exit_reason,
    wait_ready,
)
from infra.devstack.postgres import start_postgres
from infra.devstack.processes import create_topics, start_broker, start_redis, wait_http_ready
from infra.devstack.procfs import listens_on
from infra.devstack.prometheus import start_prometheus
from infra.devstack.stack import (
    SERVICES,
    Ports,
    ServiceSpec,
    infra_urls,
    launch_service,
    scrape_targets,
)
from infra.devstack.state import StateDir
from services.chassis.events import TOPICS

__all__ = ["Supervisor", "relaunchers"]

Relaunch = Callable[[], ManagedProcess]
# Listening with SO_REUSEPORT (GATEWAY_REUSE_PORT), so restarted without a gap.
ROLLING = frozenset(spec.name for spec in SERVICES if spec.service == "gateway")


def relaunchers(ports: Ports, state: StateDir) -> dict[str, tuple[Relaunch, str]]:
    """How to start each piece of the stack again, ready, on the same port and data;
    with the address it is recorded under."""
    urls = infra_urls(ports)

    def postgres() -> ManagedProcess:
        return start_postgres(state.postgres_data, ports.postgres, state.log("postgres"))

    def redis() -> ManagedProcess:
        return start_redis(ports.redis, state.redis_data, state.log("redis"))

    def broker() -> ManagedProcess:
        proc = start_broker(ports.broker, state.log("broker"))
        # Its storage is memory: a restarted broker has no topics until told.
        create_topics(urls["broker"], TOPICS)
        return proc

    def prometheus() -> ManagedProcess:
        proc = start_prometheus(
            ports.prometheus,
            scrape_targets(ports),
            state.root / "prometheus",
            state.log("prometheus"),
        )
        if proc is None:
            raise DevstackError("prometheus is no longer installed")
        return proc

    found = {
        "postgres": (postgres, urls["postgres"]),
        "redis": (redis, urls["redis"]),
        "broker": (broker, urls["broker"]),
        "prometheus": (prometheus, f"http://{LOCALHOST}:{ports.prometheus}"),
    }
    for spec in SERVICES:
        found[spec.name] = (_service(spec, ports, state), spec.url(ports))
    return found


def _service(spec: ServiceSpec, ports: Ports, state: StateDir) -> Relaunch:
    port = spec.own_port(ports)

    def relaunch() -> ManagedProcess:
        proc = launch_service(spec, ports, state)
        if spec.name in ROLLING:
            # Its ports may be answered by the old process too: wait until this
            # one listens, which uvicorn does only once the app has started.
            ready = functools.partial(listens_on, proc.pid, port)
            wait_ready(proc, ready, 30, f"listen on port {port}")
        else:
            wait_http_ready(proc, f"{spec.url(ports)}/readyz")
        return proc

    return relaunch


@dataclass
class Supervisor:
    procs: list[ManagedProcess]  # updated in place: what stop_stack will stop
    relaunch: Mapping[str, tuple[Relaunch, str]]
    state: StateDir
    say: Callable[[str], None]
    max_restarts: int = 5
    window_seconds: float = 60.0
    _restarts: dict[str, deque[float]] = field(default_factory=dict)

    def watch(self, poll_seconds: float = 0.5) -> ManagedProcess:
        """Restart what dies; return the process that died too often to restart."""
        while True:
            for index, proc in enumerate(self.procs):
                if self.state.take_restart(proc.name) and proc.name in self.relaunch:
                    self.procs[index] = self._replace(proc)
                    continue
                if proc.alive() or self.state.held(proc.name):
                    continue
                code = proc.stop()  # reaps it
                if not self._may_restart(proc.name):
                    return proc
                self.procs[index] = self._restart(proc, code)
            time.sleep(poll_seconds)

    def _replace(self, old: ManagedProcess) -> ManagedProcess:
        """A restart on request (``make restart-gateway``, the chaos suite).

        A process listening with SO_REUSEPORT (the gateway) is rolled: the new
        one starts beside it and is ready before the old one gets SIGTERM and
        drains. Anything else is stopped, then started.
        """
        relaunch, url = self.relaunch[old.name]
        started = time.monotonic()
        if old.name in ROLLING:
            new = relaunch()
            self.state.record(new, url)
            old.stop(timeout=30)
        else:
            old.stop(timeout=30)
            new = relaunch()
            self.state.record(new, url)
        how = "rolled" if old.name in ROLLING else "restarted"
        took = time.monotonic() - started
        self.say(f"{old.name} {how}: pid {old.pid} -> {new.pid} in {took:.1f} s")
        return new

    def _may_restart(self, name: str) -> bool:
        if name not in self.relaunch:
            return False
        now = time.monotonic()
        recent = self._restarts.setdefault(name, deque())
        while recent and now - recent[0] > self.window_seconds:
            recent.popleft()
        recent.append(now)
        return len(recent) <= self.max_restarts

    def _restart(self, dead: ManagedProcess, code: int) -> ManagedProcess:
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            try:
                proc = self.relaunch[dead.name][0]()
                break
            except DevstackError as error:
                # Postgres, for one, refuses to start while the backends of a
                # killed postmaster are still exiting: wait and try again.
                if attempts >= 10:
                    raise
                self.say(f"{dead.name} did not come back yet ({error}); retrying")
                time.sleep(min(5.0, 0.5 * attempts))
        self.state.record(proc, self.relaunch[dead.name][1])
        took = time.monotonic() - started
        self.say(
            f"{dead.name} (pid {dead.pid}) {exit_reason(code)}; "
            f"restarted as pid {proc.pid}, ready in {took:.1f} s"
        )
        return proc
