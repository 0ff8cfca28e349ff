"""Processes a benchmark starts beside the stack: the floor, and a gateway
with its redirect cache off (to measure the link hop the cache saves)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.devstack.managed import LOCALHOST, ManagedProcess, accepts_tcp, free_port, wait_ready
from infra.devstack.processes import start_python
from infra.devstack.stack import REPO_ROOT, Ports, service_env

__all__ = ["start_floor", "uncached_gateway"]


def start_floor(port: int, log: Path) -> ManagedProcess:
    argv = ["-m", "loadtests.floor", "--port", str(port)]
    floor = start_python("floor", argv, {}, log, None, cwd=REPO_ROOT)
    # No readiness route: the floor is one route and nothing else.
    wait_ready(floor, lambda: accepts_tcp(port), 30, "accept connections")
    return floor


@contextmanager
def uncached_gateway(ports: Ports, log: Path) -> Iterator[tuple[str, int]]:
    """The stack's gateway settings on another port, ``GATEWAY_REDIRECT_CACHE_SECONDS=0``;
    yields its URL and pid."""
    port = free_port()
    url = f"http://{LOCALHOST}:{port}"
    env = {
        **service_env(ports)["gateway"],
        "GATEWAY_PORT": str(port),
        "GATEWAY_REDIRECT_CACHE_SECONDS": "0",
        "OTEL_SERVICE_NAME": "gateway-uncached",
    }
    gateway = start_python(
        "gateway-uncached", ["-m", "gateway"], env, log, f"{url}/readyz", cwd=REPO_ROOT
    )
    try:
        yield url, gateway.pid
    finally:
        gateway.stop()
