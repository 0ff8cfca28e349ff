"""The metrics the monitoring reads, checked against the real, running processes.

The gateway, link, user and analytics processes get a little traffic and are
scraped, so a renamed metric, a route template that changed or a histogram
bucket that moved fails here, not on a dashboard that quietly draws nothing;
and the Prometheus `make dev` runs is started against them with the project's
rules, which must evaluate on their real samples.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from infra.devstack.managed import free_port
from infra.devstack.prometheus import start_prometheus
from tests.accounts import register
from tests.evidence import Evidence
from tests.observability import Exposed, alert_rules, dashboard_queries, recording_rules, scrape
from tests.promql import Selector, selectors
from tests.stats import poll, total


def _traffic(gateway_url: str) -> str:
    """A little of everything a visitor and a user do; returns the link code used."""
    with httpx.Client(base_url=gateway_url, timeout=10) as http:
        created = http.post("/api/v1/links", json={"url": "https://example.com/observed"})
        assert created.status_code == 201, created.text
        code = str(created.json()["code"])
        for _ in range(3):
            assert http.get(f"/{code}").status_code == 302
        # Counted before the scrape: the pipeline's metrics then have samples to check.
        assert total(poll(http, f"/api/v1/links/{code}/stats", lambda s: total(s) >= 3)) == 3
        assert http.get(f"/nope-{uuid.uuid4().hex[:8]}").status_code == 404
        assert http.get(f"/no/such/{uuid.uuid4().hex[:8]}").status_code == 404
        account = register(http)
        listed = http.get("/api/v1/webhooks", headers=account.bearer)
        assert listed.status_code == 200, listed.text
    return code


@pytest.fixture(scope="module")
def urls(
    gateway_url: str, link_url: str, user_url: str, analytics_url: str, webhooks_url: str
) -> dict[str, str]:
    """Each job's base URL, once every process runs and has had some traffic."""
    return {
        "gateway": gateway_url,
        "link": link_url,
        "user": user_url,
        "analytics": analytics_url,
        "webhooks": webhooks_url,
    }


@pytest.fixture(scope="module")
def exposed(urls: dict[str, str]) -> tuple[str, dict[str, Exposed]]:
    code = _traffic(urls["gateway"])
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


def _excerpt(job: str, scraped: Exposed, used: set[str]) -> str:
    """The samples of ``job``'s scrape that the monitoring reads; a histogram by its count."""
    buckets = {name for name in used if name.endswith("_bucket")}
    wanted = used - buckets | {name.removesuffix("_bucket") + "_count" for name in buckets}
    samples = [line for line in scraped.text.splitlines() if not line.startswith("#")]
    lines = [s for s in samples if re.split(r"[{ ]", s, maxsplit=1)[0] in wanted]
    shown = lines[:_EXCERPT_LINES]
    more = [f"... and {len(lines) - len(shown)} more"] if len(lines) > len(shown) else []
    head = f"{job}: {len(samples)} samples scraped, {len(lines)} of them read by the monitoring"
    # Declared, read by a rule or a panel, but not incremented yet in this short run.
    unsampled = sorted(n for n in wanted & scraped.names if n not in scraped.labels)
    empty = [f"(declared, no sample yet: {', '.join(unsampled)})"] if unsampled else []
    return "\n".join([head, *shown, *more, *empty])


_EXCERPT_LINES = 100


def test_every_metric_used_by_rules_and_dashboards_is_exposed(
    exposed: tuple[str, dict[str, Exposed]], evidence: Evidence
) -> None:
    _, by_job = exposed
    recorded = recording_rules()
    used = [*recorded.values(), *(rule["expr"] for rule in alert_rules())]
    used += [q for queries in dashboard_queries().values() for q in queries]
    missing = set()
    checked: set[str] = set()
    for expr in used:
        for selector in selectors(expr):
            # Recording outputs are checked through their own expressions; `up` is
            # written by Prometheus for every target, never exposed by one.
            if selector.name in recorded or selector.name == "up":
                continue
            checked.add(selector.name)
            if (problem := _problems(selector, by_job)) is not None:
                missing.add(problem)
    assert not missing, "used but not exposed by any running process:\n" + "\n".join(
        sorted(missing)
    )
    evidence(
        f"every one of {len(checked)} metrics read by {len(used)} rules and dashboard queries "
        "is exposed: the scrapes",
        "\n\n".join(_excerpt(job, scraped, checked) for job, scraped in by_job.items()),
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
    # The gateway's redirects reach the link service as batched lookups (ADR 0012).
    assert "/internal/redirects" in link_routes
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


def _query(port: int, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": promql})
    result: list[dict[str, Any]] = answer.json()["data"]["result"]
    return result


def test_the_local_prometheus_scrapes_every_process_and_evaluates_the_rules(
    urls: dict[str, str], exposed: tuple[str, dict[str, Exposed]], tmp_path: Path
) -> None:
    targets = {job: [int(urlsplit(url).port or 0)] for job, url in urls.items()}
    port = free_port()
    prometheus = start_prometheus(port, targets, tmp_path / "prometheus", tmp_path / "prom.log")
    if prometheus is None:
        pytest.fail("prometheus is not installed: run ./infra/bootstrap.sh")
    try:
        # Two scrapes (5 s apart) make a rate; the rule group runs every 5 s after.
        deadline = time.monotonic() + 60
        rates: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(rates) < len(targets):
            time.sleep(1)
            rates = _query(port, "job:http_requests:rate5m")
        assert {r["metric"]["job"] for r in rates} == set(targets)
        health = httpx.get(f"http://127.0.0.1:{port}/api/v1/targets").json()["data"]
        assert {t["labels"]["job"]: t["health"] for t in health["activeTargets"]} == dict.fromkeys(
            targets, "up"
        )
        rules = httpx.get(f"http://127.0.0.1:{port}/api/v1/rules").json()["data"]["groups"]
        broken = [r["name"] for g in rules for r in g["rules"] if r["health"] != "ok"]
        assert not broken
        assert sum(len(g["rules"]) for g in rules) == len(recording_rules()) + len(alert_rules())
    finally:
        prometheus.stop()
