"""Monitoring files that cannot silently rot: rules, alerts, runbooks, dashboards.

promtool and amtool check every file as Prometheus and Alertmanager would load
it, the alert unit tests run, and every dashboard query is parsed by promtool.
What the queries read is checked against the running processes in
tests/test_observability_live.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from infra.devstack.prometheus import render_config
from infra.devstack.stack import Ports, scrape_targets
from infra.grafana.__main__ import rendered
from tests.evidence import Evidence
from tests.observability import (
    ALERTMANAGER_CONFIG,
    PROMETHEUS_DIR,
    RULE_FILES,
    alert_rules,
    dashboard_queries,
    load_yaml,
    run_tool,
)
from tests.promql import Selector, selectors

UNIT_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
RUNBOOK_SECTIONS = ("## Symptoms", "## Dashboards", "## Checks", "## Mitigation")


def test_prometheus_configs_are_valid(tmp_path: Path) -> None:
    run_tool("promtool", "check", "config", PROMETHEUS_DIR / "prometheus-compose.yml")
    local = tmp_path / "prometheus.yml"
    local.write_text(render_config(scrape_targets(Ports())))
    run_tool("promtool", "check", "config", local)
    jobs = {
        c["job_name"]: c["static_configs"]
        for c in json.loads(local.read_text().split("\n", 1)[1])["scrape_configs"]
    }
    # One job per service, as compose's config has it: the gateway's replicas
    # each scraped on their own port, so their counters are not mixed.
    assert jobs["gateway"] == [{"targets": ["127.0.0.1:8010", "127.0.0.1:8011"]}]
    assert jobs["link"] == [{"targets": ["127.0.0.1:8001"]}]


def test_rules_are_valid_and_their_unit_tests_pass(evidence: Evidence) -> None:
    checked = run_tool("promtool", "check", "rules", *RULE_FILES)
    tested = run_tool("promtool", "test", "rules", *UNIT_TESTS)
    assert "SUCCESS" in tested
    evidence("promtool check rules, promtool test rules", checked + "\n" + tested)


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


def test_alertmanager_config_is_valid(evidence: Evidence) -> None:
    evidence("amtool check-config", run_tool("amtool", "check-config", ALERTMANAGER_CONFIG))


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
