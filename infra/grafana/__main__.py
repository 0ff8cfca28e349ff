"""``python -m infra.grafana [--check]``: write (or check) ``dashboards/*.json``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from infra.grafana.overview import overview
from infra.grafana.panels import Json
from infra.grafana.pipeline import click_pipeline
from infra.grafana.redirect import redirect_path
from infra.grafana.resilience import resilience
from infra.grafana.webhooks import webhooks

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"
DASHBOARDS: dict[str, Callable[[], Json]] = {
    "overview.json": overview,
    "redirect-path.json": redirect_path,
    "click-pipeline.json": click_pipeline,
    "resilience.json": resilience,
    "webhooks.json": webhooks,
}


def rendered() -> dict[Path, str]:
    """Each dashboard file and the JSON it must hold."""
    return {
        DASHBOARD_DIR / name: json.dumps(build(), indent=2) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.grafana", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    check = parser.parse_args(argv).check
    stale = [
        path for path, text in rendered().items() if not path.is_file() or path.read_text() != text
    ]
    if check:
        for path in stale:
            print(f"{path.name} is out of date: run python -m infra.grafana", file=sys.stderr)
        return 1 if stale else 0
    for path, text in rendered().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
