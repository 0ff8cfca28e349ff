"""Where the faults land: the local stack of ``make dev``, or compose.

Both offer the same few verbs, by component name (``link``, ``redis``,
``broker``...): kill it (it is restarted by its supervisor: the devstack
runner, or compose's restart policy), freeze it (SIGSTOP: a hung host,
connections open and nothing answering), thaw it, and wait until it is back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Protocol

import httpx

from chaos.latency import ComposeLatency, Latency, LocalLatency
from infra.devstack import procfs
from infra.devstack.procfs import signal_group
from infra.devstack.state import Recorded, StateDir

__all__ = ["ComposeTarget", "LocalTarget", "Target", "ready"]


class Target(Protocol):
    gateway: str

    def kill(self, name: str, signum: signal.Signals, hold_seconds: float) -> None:
        """Send ``signum``; keep the piece down (not restarted) until ``restore``."""

    def restore(self, name: str) -> None:
        """Let a killed piece be restarted again."""

    def pause(self, name: str) -> None: ...

    def resume(self, name: str) -> None: ...

    def wait_back(self, name: str, timeout: float) -> None:
        """Until a killed piece is running again and ready."""

    def roll(self, name: str) -> None:
        """Replace a piece by a fresh process, the way a deploy does; wait for it."""

    def latency(self) -> Latency:
        """Control over the latency between a gateway and the link service."""


@dataclass
class LocalTarget:
    """The processes `make dev` runs, found by the PIDs it recorded."""

    state: StateDir
    gateway: str = ""

    def __post_init__(self) -> None:
        entries = self._entries()
        if "gateway" not in entries:
            raise SystemExit("chaos: no local stack is running; start it with `make dev`")
        # The replica the experiments act on, at its own port: its faults, its
        # breakers and its memory of redirects are one process's. Through the
        # port both replicas share, the kernel picks a replica per connection,
        # so a few keep-alive connections would teach one replica the links
        # and leave the other nothing to replay (ADR 0019).
        self.gateway = self.gateway or entries["gateway"].url
        self._killed: dict[str, int] = {}

    def _entries(self) -> dict[str, Recorded]:
        return {e.name: e for e in self.state.recorded() if e.running()}

    def _entry(self, name: str) -> Recorded:
        entry = self._entries().get(name)
        if entry is None:
            raise RuntimeError(f"{name} is not running")
        return entry

    def _signal(self, name: str, signum: signal.Signals) -> int:
        entry = self._entry(name)
        if entry.leads_group:
            # The whole group: Postgres's backends, a server's workers.
            signal_group(entry.pid, signum)
        else:
            os.kill(entry.pid, signum)
        return entry.pid

    def kill(self, name: str, signum: signal.Signals, hold_seconds: float) -> None:
        if hold_seconds > 0:
            # Bounded, in case this process dies before restoring it.
            self.state.hold(name, hold_seconds + 60)
        self._killed[name] = self._signal(name, signum)

    def restore(self, name: str) -> None:
        self.state.release(name)

    def pause(self, name: str) -> None:
        self._signal(name, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self._signal(name, signal.SIGCONT)

    def wait_back(self, name: str, timeout: float) -> None:
        """Until the runner has restarted ``name`` and recorded it ready."""
        old = self._killed.pop(name, None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self._entries().get(name)
            if entry is not None and entry.pid != old:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{name} was not restarted within {timeout:.0f} s")

    def latency(self) -> Latency:
        return LocalLatency(self.state.root / "chaos")

    def roll(self, name: str) -> None:
        old = self._entry(name).pid
        self.state.request_restart(name)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            entry = self._entries().get(name)
            if entry is not None and entry.pid != old and not procfs.running(old):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{name} was not replaced within 90 s")


# Component names here -> compose service names (docker-compose.yml).
COMPOSE_SERVICES = {"broker": "kafka", "gateway": "gateway-1"}


@dataclass
class ComposeTarget:
    """The compose stack: `docker compose kill/pause/unpause`; restarts are
    compose's (``restart: unless-stopped``), readiness its healthchecks."""

    gateway: str = "http://127.0.0.1:8080"
    project_dir: str = "."
    toxiproxy: str = "http://127.0.0.1:8474"

    def _compose(self, *args: str) -> str:
        command = ["docker", "compose", "--project-directory", self.project_dir, *args]
        result = subprocess.run(command, check=True, capture_output=True, text=True)  # noqa: S603
        return result.stdout

    def _service(self, name: str) -> str:
        return COMPOSE_SERVICES.get(name, name)

    def kill(self, name: str, signum: signal.Signals, hold_seconds: float) -> None:
        # A container killed through the API stays down until started again.
        self._compose("kill", "-s", signum.name, self._service(name))

    def restore(self, name: str) -> None:
        self._compose("start", self._service(name))

    def pause(self, name: str) -> None:
        self._compose("pause", self._service(name))

    def resume(self, name: str) -> None:
        self._compose("unpause", self._service(name))

    def latency(self) -> Latency:
        return ComposeLatency(self.gateway, self.toxiproxy)

    def roll(self, name: str) -> None:
        # nginx keeps sending to the other replica while this one restarts.
        self._compose("restart", self._service(name))
        self.wait_back(name, 90)

    def wait_back(self, name: str, timeout: float) -> None:
        service = self._service(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self._compose("ps", "--format", "{{.State}} {{.Health}}", service).split()
            if state[:1] == ["running"] and state[1:] in ([], ["healthy"]):
                return
            time.sleep(0.5)
        raise TimeoutError(f"{service} did not come back within {timeout:.0f} s")


def ready(gateway: str) -> bool:
    """The gateway answers and sees every dependency up."""
    try:
        body = httpx.get(f"{gateway}/readyz", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return False
    return bool(body.get("status") == "ready")
