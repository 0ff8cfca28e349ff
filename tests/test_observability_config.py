"""Monitoring that cannot silently rot: rules, alerts, runbooks, dashboards and real metrics.

promtool and amtool check every file as Prometheus and Alertmanager would load
it; the alert unit tests run; every dashboard query is parsed by promtool; and
the real processes are scraped after some traffic, so a renamed metric, a
route template that changed or a histogram bucket that moved fails here, not
on a dashboard that quietly draws nothing.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
import pytest

from infra.devstack.prometheus import render_config
from infra.grafana.__main__ import rendered
from tests.accounts import register
from tests.observability import (
    ALERTMANAGER_CONFIG,
    PROMETHEUS_DIR,
    RULE_FILES,
    Exposed,
    alert_rules,
    dashboard_queries,
    load_yaml,
    recording_rules,
    run_tool,
    scrape,
)
from tests.promql import Selector, selectors

UNIT_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
RUNBOOK_SECTIONS = ("## Symptoms", "## Dashboards", "## Checks", "## Mitigation")


def test_prometheus_configs_are_valid(tmp_path: Path) -> None:
    run_tool("promtool", "check", "config", PROMETHEUS_DIR / "prometheus-compose.yml")
    local = tmp_path / "prometheus.yml"
    local.write_text(render_config({"gateway": 8000, "link": 8001}))
    run_tool("promtool", "check", "config", local)


def test_rules_are_valid_and_their_unit_tests_pass() -> None:
    run_tool("promtool", "check", "rules", *RULE_FILES)
    assert "SUCCESS" in run_tool("promtool", "test", "rules", *UNIT_TESTS)


def _minutes(duration: str) -> int:
    units = {"m": 1, "h": 60, "d": 1440}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([mhd])", duration))


def test_every_alert_fires_and_clears_in_a_unit_test() -> None:
    fired: dict[str, list[dict[str, str]]] = {}
    cleared: set[str] = set()
    for path in UNIT_TESTS:
        for case in load_yaml(path)["tests"]:
            evals = sorted(case.get("alert_rule_test", []), key=lambda e: _minutes(e["eval_time"]))
            for i, check in enumerate(evals):
                name = check["alertname"]
                if check["exp_alerts"]:
                    fired.setdefault(name, []).extend(a["exp_labels"] for a in check["exp_alerts"])
                    later = (e for e in evals[i + 1 :] if e["alertname"] == name)
                    if any(not e["exp_alerts"] for e in later):
                        cleared.add(name)
    for rule in alert_rules():
        name, labels = rule["alert"], rule.get("labels", {})
        assert any(labels.items() <= seen.items() for seen in fired.get(name, [])), (
            f"no unit test fires {name} with {labels}"
        )
        assert name in cleared, f"no unit test shows {name} clearing after it fired"


def test_every_alert_links_a_runbook_that_says_what_to_do() -> None:
    repo = PROMETHEUS_DIR.parents[1]
    for rule in alert_rules():
        name, annotations = rule["alert"], rule["annotations"]
        assert annotations["summary"], name
        assert annotations["description"], name
        assert annotations["runbook_url"] == f"docs/runbooks/{name}.md"
        runbook = (repo / annotations["runbook_url"]).read_text()
        missing = [section for section in RUNBOOK_SECTIONS if section not in runbook]
        assert not missing, f"{annotations['runbook_url']} lacks {missing}"


def test_alertmanager_config_is_valid() -> None:
    run_tool("amtool", "check-config", ALERTMANAGER_CONFIG)


def test_dashboards_are_what_their_definitions_generate() -> None:
    for path, text in rendered().items():
        assert path.read_text() == text, f"{path.name} is stale: run python -m infra.grafana"


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    # promtool parses rule expressions: every query becomes one, with Grafana's
    # $__rate_interval replaced the way Grafana replaces it, by a duration.
    rules = [
        {"record": f"dashboard:query:{i}", "expr": expr.replace("$__rate_interval", "1m")}
        for i, expr in enumerate(q for queries in dashboard_queries().values() for q in queries)
    ]
    assert len(rules) > 40
    check = tmp_path / "dashboard-queries.yml"
    # JSON is YAML.
    check.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))
    run_tool("promtool", "check", "rules", check)


def test_selectors_are_found_with_their_labels() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (job, le) (rate(x_bucket{job="gateway", '
        'route="/{code}", status=~"5.."}[$__rate_interval]))) / on (job) group_left '
        "sum without (instance) (y) and slo:z:ratio_rate1h > 14.4 * 0.001"
    )
    assert selectors(expr) == [
        Selector("x_bucket", {"job": "gateway", "route": "/{code}"}),
        Selector("y"),
        Selector("slo:z:ratio_rate1h"),
    ]


def _traffic(gateway_url: str) -> str:
    """A little of everything a visitor and a user do; returns the link code used."""
    with httpx.Client(base_url=gateway_url, timeout=10) as http:
        created = http.post("/api/v1/links", json={"url": "https://example.com/observed"})
        assert created.status_code == 201, created.text
        code = str(created.json()["code"])
        for _ in range(3):
            assert http.get(f"/{code}").status_code == 302
        # 404 until analytics has consumed the link's LinkCreated event: either is traffic.
        assert http.get(f"/api/v1/links/{code}/stats").status_code in (200, 404)
        assert http.get(f"/nope-{uuid.uuid4().hex[:8]}").status_code == 404
        assert http.get(f"/no/such/{uuid.uuid4().hex[:8]}").status_code == 404
        register(http)
    return code


@pytest.fixture(scope="module")
def exposed(
    gateway_url: str, link_url: str, user_url: str, analytics_url: str
) -> tuple[str, dict[str, Exposed]]:
    code = _traffic(gateway_url)
    urls = {"gateway": gateway_url, "link": link_url, "user": user_url, "analytics": analytics_url}
    return code, {job: scrape(url) for job, url in urls.items()}


def _problems(selector: Selector, by_job: dict[str, Exposed]) -> str | None:
    job = selector.equals.get("job")
    scrapes = [by_job[job]] if job in by_job else list(by_job.values())
    if not any(selector.name in s.names for s in scrapes):
        return f"{selector.name} (job {job or 'any'})"
    # Label values a rule or a panel depends on: a route template, a bucket bound.
    for label in ("route", "le"):
        value = selector.equals.get(label)
        if value is not None and not any(
            labels.get(label) == value
            for s in scrapes
            for labels in s.labels.get(selector.name, [])
        ):
            return f'{selector.name}{{{label}="{value}"}} (job {job or "any"})'
    return None


def test_every_metric_used_by_rules_and_dashboards_is_exposed(
    exposed: tuple[str, dict[str, Exposed]],
) -> None:
    _, by_job = exposed
    recorded = recording_rules()
    used = [*recorded.values(), *(rule["expr"] for rule in alert_rules())]
    used += [q for queries in dashboard_queries().values() for q in queries]
    missing = set()
    for expr in used:
        for selector in selectors(expr):
            # Recording outputs are checked through their own expressions; `up` is
            # written by Prometheus for every target, never exposed by one.
            if selector.name in recorded or selector.name == "up":
                continue
            if (problem := _problems(selector, by_job)) is not None:
                missing.add(problem)
    assert not missing, "used but not exposed by any running process:\n" + "\n".join(
        sorted(missing)
    )


def test_request_metrics_are_labelled_by_route_template_never_by_path(
    exposed: tuple[str, dict[str, Exposed]],
) -> None:
    code, by_job = exposed
    gateway_routes = {labels["route"] for labels in by_job["gateway"].labels["http_requests_total"]}
    assert {"/{code}", "/api/v1/links/*", "/api/v1/links/{code}/stats", "unmatched"} <= (
        gateway_routes
    )
    link_routes = {labels["route"] for labels in by_job["link"].labels["http_requests_total"]}
    assert "/{code}" in link_routes
    for scraped in by_job.values():
        for labels in scraped.labels.get("http_requests_total", []):
            for raw in (code, "nope-", "/no/such"):
                assert raw not in labels["route"], labels


def test_database_pools_are_reported(exposed: tuple[str, dict[str, Exposed]]) -> None:
    _, by_job = exposed
    for job, database in (("link", "link"), ("user", "users"), ("analytics", "analytics")):
        states = {
            labels["state"]
            for labels in by_job[job].labels["db_pool_connections"]
            if labels["database"] == database
        }
        assert states == {"in_use", "idle", "overflow"}, (job, states)
