"""Prometheus beside the local stack: every process scraped, the project's rules loaded.

``make dev`` starts it after the services (port 59090, ``DEVSTACK_PROMETHEUS_PORT``
to move it), with the same rule files as compose (infra/prometheus/rules/) and a
config written for the stack's actual ports into the state directory::

    .devstack/prometheus/prometheus.yml   generated at each start
    .devstack/prometheus/data/            its database, kept for a day

Where Prometheus is not installed the stack runs without it (the bootstrap
installs Debian's ``prometheus`` package, which also brings ``promtool``).
Debian's build serves the classic web UI: ``/`` redirects to ``/classic/graph``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from infra.devstack.managed import LOCALHOST, ManagedProcess, spawn, wait_ready

__all__ = ["RULES_DIR", "prometheus_binary", "render_config", "start_prometheus"]

RULES_DIR = Path(__file__).resolve().parents[1] / "prometheus" / "rules"
# Shorter than compose's 15 s: on a laptop, a rate shows up within seconds of the traffic.
SCRAPE_INTERVAL = "5s"
RETENTION = "1d"


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def render_config(targets: Mapping[str, Sequence[int]], rules_dir: Path = RULES_DIR) -> str:
    """The config for ``targets`` (job name -> its ports on 127.0.0.1), as YAML.

    JSON is YAML, so no YAML writer is needed; the job names are the service
    names, exactly as in infra/prometheus/prometheus-compose.yml, so the same
    rules and dashboards work on both.
    """
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(path) for path in sorted(rules_dir.glob("*.yml"))],
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [{"targets": [f"{LOCALHOST}:{port}" for port in ports]}],
            }
            for job, ports in targets.items()
        ],
    }
    header = "# Written by infra/devstack/prometheus.py at each start; edits are lost.\n"
    return header + json.dumps(config, indent=2) + "\n"


def start_prometheus(
    port: int, targets: Mapping[str, Sequence[int]], state_dir: Path, log_path: Path
) -> ManagedProcess | None:
    """Run Prometheus on ``port`` until it reports ready; None when it is not installed."""
    binary = prometheus_binary()
    if binary is None:
        return None
    state_dir.mkdir(parents=True, exist_ok=True)
    config = state_dir / "prometheus.yml"
    config.write_text(render_config(targets))
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={state_dir / 'data'}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address={LOCALHOST}:{port}",
    ]
    proc = spawn("prometheus", argv, log_path)
    wait_ready(proc, lambda: _ready(port), 30, "report ready")
    return proc


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://{LOCALHOST}:{port}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
