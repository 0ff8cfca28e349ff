"""Processes a benchmark starts beside the stack: the floor, the bare
two-hop floor, and a gateway with its redirect cache off (to measure the
link hop the cache saves)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis

from infra.devstack.managed import LOCALHOST, ManagedProcess, accepts_tcp, free_port, wait_ready
from infra.devstack.processes import start_python
from infra.devstack.stack import REPO_ROOT, Ports, service_env
from infra.devstack.state import StateDir
from loadtests.floor import FLOOR_CODE, FLOOR_TARGET

__all__ = ["TWO_HOP_REDIS_DB", "start_floor", "two_hop_floor", "uncached_gateway"]

# A database of the stack's Redis that no service uses (infra/devstack/environment.py).
TWO_HOP_REDIS_DB = 15


def start_floor(port: int, log: Path, *shape: str, name: str = "floor") -> ManagedProcess:
    """loadtests/floor.py on ``port``; ``shape``: its ``--redis`` or ``--upstream`` option."""
    argv = ["-m", "loadtests.floor", "--port", str(port), *shape]
    floor = start_python(name, argv, {}, log, None, cwd=REPO_ROOT)
    # No readiness route: the floor is one route and nothing else.
    wait_ready(floor, lambda: accepts_tcp(port), 30, "accept connections")
    return floor


@contextmanager
def two_hop_floor(ports: Ports, state: StateDir) -> Iterator[tuple[str, dict[str, int]]]:
    """The floor's proxy in front of the floor on the stack's Redis (``FLOOR_CODE``
    set there); yields the front's URL and both pids, by name."""
    back_port, front_port = free_port(), free_port()
    with Redis(host=LOCALHOST, port=ports.redis, db=TWO_HOP_REDIS_DB) as store:
        store.set(FLOOR_CODE, FLOOR_TARGET)
    redis = f"redis://{LOCALHOST}:{ports.redis}/{TWO_HOP_REDIS_DB}"
    back = start_floor(back_port, state.log("two-hop-back"), "--redis", redis, name="2-hop back")
    try:
        upstream = f"http://{LOCALHOST}:{back_port}"
        front = start_floor(
            front_port, state.log("two-hop-front"), "--upstream", upstream, name="2-hop front"
        )
        try:
            yield (
                f"http://{LOCALHOST}:{front_port}",
                {"2-hop front": front.pid, "2-hop back": back.pid},
            )
        finally:
            front.stop()
    finally:
        back.stop()


@contextmanager
def uncached_gateway(
    ports: Ports, log: Path, name: str = "gateway-uncached", **settings: str
) -> Iterator[tuple[str, int]]:
    """The stack's gateway settings on another port, ``GATEWAY_REDIRECT_CACHE_SECONDS=0``
    and ``settings`` (``GATEWAY_`` variables); yields its URL and pid."""
    port = free_port()
    url = f"http://{LOCALHOST}:{port}"
    env = {
        **service_env(ports)["gateway"],
        "GATEWAY_PORT": str(port),
        "GATEWAY_REDIRECT_CACHE_SECONDS": "0",
        "OTEL_SERVICE_NAME": name,
        **{f"GATEWAY_{key.upper()}": value for key, value in settings.items()},
    }
    gateway = start_python(name, ["-m", "gateway"], env, log, f"{url}/readyz", cwd=REPO_ROOT)
    try:
        yield url, gateway.pid
    finally:
        gateway.stop()
