"""Latency between the gateway and the link service, added and removed on cue.

Locally there is no proxy on that path, so the experiment brings its own: a
`faulty` TCP proxy in front of the link service and a second gateway (the
canary) that reaches the link service through it; traffic for the experiment
goes to the canary. `faulty` takes its delay at start, so adding latency is
restarting the proxy with a delay on the same port (its open connections
break: the gateway's retries and breaker see that too). In compose, the
gateways already reach the link service through toxiproxy, and a latency
toxic is added and removed through its API.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import httpx

from infra.devstack.managed import DevstackError, ManagedProcess, accepts_tcp, spawn, wait_ready
from infra.devstack.processes import free_port, start_python
from infra.devstack.stack import REPO_ROOT, Ports, service_env

__all__ = ["ComposeLatency", "Latency", "LocalLatency"]


class Latency(Protocol):
    gateway: str  # where the experiment's traffic goes

    def add(self, delay_ms: int) -> None: ...

    def remove(self) -> None: ...

    def close(self) -> None: ...


def _faulty() -> str:
    found = shutil.which("faulty") or str(Path(sys.executable).with_name("faulty"))
    if not Path(found).exists():
        raise DevstackError("faulty is not installed (make install)")
    return found


@dataclass
class LocalLatency:
    """A `faulty` proxy to the link service and a canary gateway behind it."""

    workdir: Path
    ports: Ports = field(default_factory=Ports.from_env)
    gateway: str = ""
    _proxy_port: int = 0
    _proxy: ManagedProcess | None = None
    _canary: ManagedProcess | None = None

    def __post_init__(self) -> None:
        self._proxy_port = free_port()
        self._start_proxy(0)
        port = free_port()
        env = service_env(replace(self.ports, gateway=port))["gateway"]
        env |= {
            "GATEWAY_LINK_SERVICE_URL": f"http://127.0.0.1:{self._proxy_port}",
            "GATEWAY_REUSE_PORT": "false",
            "OTEL_SERVICE_NAME": "gateway-canary",
        }
        self.gateway = f"http://127.0.0.1:{port}"
        try:
            self._canary = start_python(
                "gateway-canary",
                ["-m", "gateway"],
                env,
                self.workdir / "gateway-canary.log",
                f"{self.gateway}/readyz",
                cwd=REPO_ROOT,
            )
        except BaseException:
            self.close()
            raise

    def _start_proxy(self, delay_ms: int) -> None:
        if self._proxy is not None:
            self._proxy.stop()
        argv = [_faulty(), f"127.0.0.1:{self._proxy_port}", f"127.0.0.1:{self.ports.link}"]
        if delay_ms:
            argv += ["--delay-down", str(delay_ms)]  # answers held back, requests not
        self._proxy = spawn("faulty", argv, self.workdir / "faulty.log")
        listening = lambda: accepts_tcp(self._proxy_port)  # noqa: E731
        wait_ready(self._proxy, listening, 10, "listen")

    def add(self, delay_ms: int) -> None:
        self._start_proxy(delay_ms)

    def remove(self) -> None:
        self._start_proxy(0)

    def close(self) -> None:
        for proc in (self._canary, self._proxy):
            if proc is not None:
                proc.stop()


@dataclass
class ComposeLatency:
    """A latency toxic on compose's toxiproxy ("link", infra/compose/toxiproxy.json)."""

    gateway: str
    api: str = "http://127.0.0.1:8474"

    def add(self, delay_ms: int) -> None:
        toxic = {
            "name": "chaos-latency",
            "type": "latency",
            "stream": "downstream",
            "attributes": {"latency": delay_ms},
        }
        httpx.post(f"{self.api}/proxies/link/toxics", json=toxic, timeout=5).raise_for_status()

    def remove(self) -> None:
        httpx.delete(f"{self.api}/proxies/link/toxics/chaos-latency", timeout=5)

    def close(self) -> None:
        self.remove()
