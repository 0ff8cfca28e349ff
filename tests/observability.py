"""The monitoring files as data, for tests/test_observability_config.py.

Rules, alert unit tests and dashboards are read as Prometheus and Grafana read
them; promtool and amtool are run as CI runs them. A missing tool fails the
test that needs it with a message saying how to get it, never skips it: CI
must not go green by not checking.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.devstack.stack import REPO_ROOT

__all__ = [
    "ALERTMANAGER_CONFIG",
    "PROMETHEUS_DIR",
    "RULE_FILES",
    "Exposed",
    "alert_rules",
    "dashboard_queries",
    "load_yaml",
    "recording_rules",
    "run_tool",
    "scrape",
]

PROMETHEUS_DIR = REPO_ROOT / "infra" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
ALERTMANAGER_CONFIG = REPO_ROOT / "infra" / "alertmanager" / "alertmanager.yml"
DASHBOARD_DIR = REPO_ROOT / "infra" / "grafana" / "dashboards"

# PyYAML comes with uvicorn[standard] but without type stubs: typed as Any here
# rather than by an ignore comment that would turn into an error the day the
# stubs are installed.
_yaml: Any = importlib.import_module("yaml")


def load_yaml(path: Path) -> Any:
    return _yaml.safe_load(path.read_text())


def run_tool(*argv: str | Path) -> str:
    """Run promtool or amtool; fail the test with its output unless it succeeds."""
    tool = str(argv[0])
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: run ./infra/bootstrap.sh (Debian: prometheus, "
                    "prometheus-alertmanager)")  # fmt: skip
    done = subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, timeout=120, check=False
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv))} failed:\n{output}")
    return output


def _rules() -> Iterator[dict[str, Any]]:
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            yield from group["rules"]


def recording_rules() -> dict[str, str]:
    """Recording rule output name -> its expression."""
    return {rule["record"]: rule["expr"] for rule in _rules() if "record" in rule}


def alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def dashboard_queries() -> dict[str, list[str]]:
    """Dashboard file name -> the PromQL of every panel target, as Grafana sends it."""
    queries: dict[str, list[str]] = {}
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        panels = json.loads(path.read_text())["panels"]
        queries[path.name] = [t["expr"] for p in panels for t in p.get("targets", ())]
    return queries


@dataclass
class Exposed:
    """What one process's /metrics declares: sample names and their label sets."""

    names: set[str]
    labels: dict[str, list[dict[str, str]]]
    text: str  # the scrape as served, for the CI log's excerpt


# The sample names a declared family may have before it has any sample (a
# labelled counter nobody has incremented yet still has its HELP and TYPE).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}


def scrape(base_url: str) -> Exposed:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    exposed = Exposed(set(), {}, text)
    for family in text_string_to_metric_families(text):
        exposed.names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
        for sample in family.samples:
            exposed.names.add(sample.name)
            exposed.labels.setdefault(sample.name, []).append(dict(sample.labels))
    return exposed
