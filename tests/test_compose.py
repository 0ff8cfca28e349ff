"""``docker compose up``, run for real on this machine's engine (issue 19).

The project's images are built from the Dockerfile as it is, the core tier
comes up with ``up --wait``, and everything is checked through the published
edge port, as a user would: shorten, follow, count, register and log in, the
web page and its cached assets; then a gateway replica is killed, toxiproxy
delays the link service (``make compose-chaos``), Kafka goes away for a
while; then the full tier's Prometheus, Alertmanager and a headless Locust
run; memory is read with ``docker stats`` after each tier; ``down`` must leave
nothing. What differs from the compose file a user runs is listed in
tests/compose_stack.py. ``make test-compose`` runs this module; the tests
depend on each other's order (one stack, one story) and run in file order.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.compose_stack import SLOW_INIT_SECONDS, Stack, build_images, engine_problem
from tests.compose_steps import memory_table, prometheus_ready, register_and_login, wait_healthy
from tests.evidence import Evidence

pytestmark = pytest.mark.timeout(900)
FULL = ("--profile", "full")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    problem = engine_problem()
    if problem is not None:
        pytest.skip(problem)
    built = build_images()
    stack = Stack(tmp_path_factory.mktemp("compose"))
    stack.write_override()
    stack.timings["build (runtime + load images)"] = built
    started = time.monotonic()
    try:
        stack.compose("up", "--detach", "--wait", "--wait-timeout", "300")
        stack.timings["up --wait, core tier"] = time.monotonic() - started
        yield stack
    finally:
        stack.compose(*FULL, "down", "--volumes", "--timeout", "10", check=False)


def test_core_tier_comes_up_healthy_after_a_slow_first_start(
    stack: Stack, evidence: Evidence
) -> None:
    """Issue 19 point 1: with a slow init script the init job still finds Postgres on TCP."""
    states = stack.compose("ps", "--all", "--format", "{{.Service}}\t{{.State}}\t{{.Health}}")
    rows = dict(line.split("\t", 1) for line in states.strip().splitlines())
    assert rows.pop("init").startswith("exited"), states
    assert all(row.strip() == "running\thealthy" for row in rows.values()), states
    exit_code = stack.compose("ps", "--all", "--format", "{{.ExitCode}}", "init").strip()
    assert exit_code == "0"
    assert f"slow disk: {SLOW_INIT_SECONDS} s" in stack.compose("logs", "postgres")
    timings = "\n".join(f"{what}: {seconds:.1f} s" for what, seconds in stack.timings.items())
    evidence(
        "compose: the core tier up",
        f"project {stack.project}, edge {stack.url('edge')}, broker stand-in: "
        f"{stack.standin_broker}\n{timings}\n"
        f"(Postgres ran a {SLOW_INIT_SECONDS} s init script first; init exited 0)\n{states}",
    )


def test_a_user_shortens_follows_counts_and_gets_the_page(stack: Stack, evidence: Evidence) -> None:
    with httpx.Client(base_url=stack.url("edge"), timeout=15) as http:
        bearer = register_and_login(http)
        created = http.post(
            "/api/v1/links", json={"url": "https://example.com/e2e"}, headers=bearer
        )
        assert created.status_code == 201, created.text
        code = created.json()["code"]
        followed = http.get(f"/{code}", headers={"user-agent": "Mozilla/5.0 (e2e)"})
        assert followed.status_code in (301, 302, 307, 308), followed.text
        assert followed.headers["location"] == "https://example.com/e2e"
        clicks = 0
        for _ in range(150):  # counted asynchronously: gateway -> Kafka -> analytics
            stats = http.get(f"/api/v1/links/{code}/stats", headers=bearer)
            totals = stats.json().get("totals", {}) if stats.status_code == 200 else {}
            clicks = int(totals.get("clicks", 0)) + int(totals.get("bot_clicks", 0))
            if clicks:
                break
            time.sleep(0.2)
        assert clicks == 1
        page = http.get("/")
        assert page.status_code == 200
        asset = re.search(r'src="(/assets/app\.[0-9a-f]+\.js)"', page.text)
        assert asset is not None
        first, again = (http.get(asset.group(1)) for _ in range(2))
        assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert (first.headers["x-cache-status"], again.headers["x-cache-status"]) == ("MISS", "HIT")
        # Issue 19 point 2: the replicas' metrics are Prometheus's, not the world's.
        metrics = http.get("/metrics")
        assert metrics.status_code == 404
    evidence(
        "compose: through the edge, as a user",
        f"POST /api/v1/links -> 201 {code}; GET /{code} -> {followed.status_code} "
        f"{followed.headers['location']}; stats: {clicks} click\n"
        f"GET / -> 200; GET {asset.group(1)} -> {first.headers['x-cache-status']}, then "
        f"{again.headers['x-cache-status']} ({first.headers['cache-control']}); "
        f"GET /metrics -> {metrics.status_code}",
    )
    stack.code = code


def test_the_edge_serves_on_with_one_gateway_replica_killed(
    stack: Stack, evidence: Evidence
) -> None:
    stack.compose("kill", "gateway-1")
    with httpx.Client(base_url=stack.url("edge"), timeout=15) as http:
        answers = [http.get(f"/{stack.code}").status_code for _ in range(50)]
    stack.compose("start", "gateway-1")
    waited = wait_healthy(stack, "gateway-1", 120)
    assert set(answers) <= {301, 302, 307, 308}, answers
    evidence(
        "compose: gateway-1 killed",
        f"50 redirects through the edge with gateway-1 down: statuses {sorted(set(answers))}; "
        f"gateway-1 healthy again {waited:.1f} s after `docker compose start`",
    )


def test_latency_to_the_link_service_opens_the_breaker_and_refuses_only_limited_links(
    stack: Stack, evidence: Evidence, tmp_path: Path
) -> None:
    """``make compose-chaos``: the chaos suite's latency experiment, through toxiproxy.

    Published links are answered by the gateway itself (its memory, the read
    model) and never wait; visit-limited links need the link service for every
    visit: they wait for the timeout (504), then are refused at once (503)
    while the breaker they opened is open.
    """
    report = tmp_path / "chaos.md"
    done = subprocess.run(
        ["make", "--no-print-directory", "compose-chaos"],
        env={**stack.env, "CHAOS_REPORT": str(report)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    # What the issue asks to see; the experiment's own p99 budget (2.6 s, set on
    # the local stack) is printed, not asserted: two shared cores run 14 containers.
    assert "published links: 100.0% of" in output, output
    assert "RPO 0 events" in output, output
    assert re.search(r"breaker open after [\d.]+ s", output), output
    shared = re.search(r"(\d+) answered from the read model", output)
    assert shared is not None, output
    assert int(shared.group(1)) > 0, output
    limited = re.search(
        r"visit-limited links: [\d.]+% of \d+ redirects ok, p99 \d+ ms, "
        r"\d+ refused \(([^)]*)\)",
        output,
    )
    assert limited is not None, output
    assert {int(s) for s in re.findall(r"(\d+): \d+", limited.group(1))} <= {503, 504}, output
    verdict = re.search(r"-> (pass|FAIL: .*)", output)
    assert verdict is not None, output
    failures = verdict.group(1).removeprefix("FAIL: ").split("; ")
    assert verdict.group(1) == "pass" or all(": p99 " in f for f in failures), output
    evidence("compose: make compose-chaos (latency-link)", output)


def test_a_broker_outage_writes_a_few_lines_not_hundreds(stack: Stack, evidence: Evidence) -> None:
    """Issue 19 point 4: 832 lines in 40 s before; the gateway is asked to redirect meanwhile."""
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stack.compose("stop", "kafka")
    with httpx.Client(base_url=stack.url("edge"), timeout=15) as http:
        for _ in range(40):
            http.get(f"/{stack.code}")
            time.sleep(0.5)
    lines = stack.compose("logs", "--no-log-prefix", "--since", since, "gateway-1").splitlines()
    stack.compose("start", "kafka")
    wait_healthy(stack, "kafka", 60)
    # The stand-in broker keeps topics in memory: the init job makes them again.
    stack.compose("run", "--rm", "init")
    errors = [line for line in lines if '"access"' not in line]
    assert len(errors) <= 20, "\n".join(errors[-30:])
    evidence(
        "compose: 20 s without Kafka, gateway-1's log",
        f"{len(errors)} lines besides the access log:\n" + "\n".join(errors),
    )


def test_core_containers_stay_under_their_memory_limits(stack: Stack, evidence: Evidence) -> None:
    rows = stack.memory()
    assert not [row for row in rows if row[1] >= row[2]], memory_table(rows)
    evidence("compose: docker stats, core tier (after the chaos steps)", memory_table(rows))


def test_full_tier_scrapes_alerts_and_carries_a_load_run(stack: Stack, evidence: Evidence) -> None:
    started = time.monotonic()
    stack.compose(*FULL, "up", "--detach", "--wait", "prometheus", "alertmanager", "locust")
    up_seconds = time.monotonic() - started
    targets, rules = prometheus_ready(stack.url("prometheus"), 120)
    # Two gateways, link, user, analytics, webhooks, and Prometheus itself.
    assert len(targets) == 7, targets
    assert set(targets.values()) == {"up"}, targets
    assert rules >= 10, rules
    assert httpx.get(f"{stack.url('alertmanager')}/-/ready", timeout=5).status_code == 200
    load = stack.compose(
        *FULL,
        "run", "--rm", "--no-deps", "locust",
        "python", "-m", "locust", "-f", "loadtests/locustfile.py", "--host", "http://edge:8000",
        "--headless", "--users", "5", "--spawn-rate", "5", "--run-time", "30s", "--only-summary",
        "--links", "50",
        timeout=300,
    )  # fmt: skip
    aggregated = re.search(r"Aggregated\s+(\d+)\s+(\d+)\(", load)
    assert aggregated is not None, load
    assert int(aggregated.group(1)) > 500, load
    assert aggregated.group(2) == "0", load  # failures
    rows = stack.memory()
    assert not [row for row in rows if row[1] >= row[2]], memory_table(rows)
    summary = "\n".join(
        line for line in load.splitlines() if "Aggregated" in line or "Type" in line
    )
    evidence(
        "compose: the full tier (Prometheus, Alertmanager, Locust)",
        f"up --wait prometheus alertmanager locust: {up_seconds:.1f} s\n"
        f"Prometheus targets: {targets}\nrules loaded: {rules}; Alertmanager /-/ready: 200\n"
        f"headless Locust, 5 users, 30 s, through the edge:\n{summary}\n\n"
        f"docker stats, full tier:\n{memory_table(rows)}",
    )


def test_down_leaves_nothing_of_the_project(stack: Stack, evidence: Evidence) -> None:
    started = time.monotonic()
    stack.compose(*FULL, "down", "--volumes", "--timeout", "10")
    assert stack.left_behind() == []
    evidence(
        "compose: down",
        f"`docker compose --profile full down --volumes`: {time.monotonic() - started:.1f} s; "
        f"containers, networks and volumes of {stack.project} left: none",
    )
