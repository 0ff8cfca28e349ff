"""Gateway replicas on one host, as the local stack runs them: one shared
port (SO_REUSEPORT), and each replica's own port for what must reach that
process and no other (its readiness, its /metrics)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from infra.devstack.managed import ManagedProcess, free_port
from infra.devstack.processes import start_python
from tests.conftest import GATEWAY_TEST_SETTINGS, GENEROUS_LIMITS, Infra, settings_for

REQUESTS = 60
_HEALTHZ = re.compile(r'^http_requests_total\{[^}]*route="/healthz"[^}]*\} (\S+)$', re.MULTILINE)


def _replica(infra: Infra, link_url: str, shared: int, own: int) -> ManagedProcess:
    settings = {**GENEROUS_LIMITS, **GATEWAY_TEST_SETTINGS, "reuse_port": "true"}
    env = settings_for(infra, "gateway", shared, link_service_url=link_url, **settings)
    env["GATEWAY_OWN_PORT"] = str(own)
    return start_python(
        f"gateway-{own}",
        ["-m", "gateway"],
        env,
        infra.workdir / f"gateway-{own}.log",
        ready_url=f"http://127.0.0.1:{own}/readyz",
    )


@pytest.fixture
def replicas(infra: Infra, link_url: str) -> Iterator[tuple[int, list[int], list[ManagedProcess]]]:
    shared, own = free_port(), [free_port(), free_port()]
    with ExitStack() as stack:
        procs = []
        for port in own:
            procs.append(_replica(infra, link_url, shared, port))
            stack.callback(procs[-1].stop)
        yield shared, own, procs


def _answered(own_port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{own_port}/metrics", trust_env=False).text
    return sum(float(v) for v in _HEALTHZ.findall(text))


def test_the_shared_port_spreads_connections_and_each_own_port_counts_its_own(
    replicas: tuple[int, list[int], list[ManagedProcess]],
) -> None:
    shared, own, _ = replicas
    for _ in range(REQUESTS):  # a new connection each: the kernel picks a replica per connection
        assert httpx.get(f"http://127.0.0.1:{shared}/healthz", trust_env=False).status_code == 200
    counted = [_answered(port) for port in own]
    # Each replica's /metrics is its own: together they saw every request, once.
    assert sum(counted) == REQUESTS
    # 60 connections all to one replica: 2 chances in 2**60.
    assert all(n > 0 for n in counted), counted


def test_the_shared_port_keeps_answering_when_one_replica_stops(
    replicas: tuple[int, list[int], list[ManagedProcess]],
) -> None:
    shared, own, procs = replicas
    procs[0].stop()
    for _ in range(20):
        assert httpx.get(f"http://127.0.0.1:{shared}/healthz", trust_env=False).status_code == 200
    assert _answered(own[1]) == 20
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{own[0]}/healthz", trust_env=False)
