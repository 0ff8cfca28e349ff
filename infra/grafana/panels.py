"""The few Grafana panel shapes the dashboards use, and their layout.

Dashboards are written as Python so every panel has the same conventions
(datasource, units, legends, a 24-column grid filled left to right) and so the
tests can list every PromQL expression they contain. Grafana itself reads only
the JSON that ``python -m infra.grafana`` writes from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "RATE",
    "Json",
    "Panel",
    "Query",
    "dashboard",
    "row",
    "stat",
    "state_timeline",
    "timeseries",
]

Json = dict[str, Any]

# Provisioned with this uid (provisioning/datasources/prometheus.yml).
DATASOURCE: Json = {"type": "prometheus", "uid": "prometheus"}
GRID_WIDTH = 24
# Grafana's window for rate(): at least four scrape intervals, whatever the zoom.
RATE = "[$__rate_interval]"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    kind: str
    title: str
    queries: tuple[Query, ...] = ()
    unit: str = "short"
    description: str = ""
    width: int = 12
    height: int = 8
    options: Json = field(default_factory=dict)
    defaults: Json = field(default_factory=dict)


def _queries(items: tuple[Query | str, ...]) -> tuple[Query, ...]:
    return tuple(q if isinstance(q, Query) else Query(q) for q in items)


def timeseries(
    title: str, *queries: Query | str, unit: str = "short", description: str = "", width: int = 12
) -> Panel:
    return Panel("timeseries", title, _queries(queries), unit, description, width)


def stat(
    title: str,
    query: Query | str,
    *,
    unit: str = "short",
    description: str = "",
    red_from: float | None = None,
    width: int = 6,
) -> Panel:
    """A single number; red from ``red_from`` up when given (an objective, a limit)."""
    steps: list[Json] = [{"color": "green", "value": None}]
    if red_from is not None:
        steps.append({"color": "red", "value": red_from})
    defaults = {"thresholds": {"mode": "absolute", "steps": steps}}
    options = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
    return Panel("stat", title, _queries((query,)), unit, description, width, 4, options, defaults)


def state_timeline(
    title: str, query: Query | str, *, states: dict[int, tuple[str, str]], description: str = ""
) -> Panel:
    """Numbered states shown by name and colour: ``{0: ("closed", "green"), ...}``."""
    mappings = [
        {
            "type": "value",
            "options": {
                str(v): {"text": text, "color": color} for v, (text, color) in states.items()
            },
        }
    ]
    return Panel(
        "state-timeline",
        title,
        _queries((query,)),
        description=description,
        width=GRID_WIDTH,
        defaults={"mappings": mappings},
    )


def row(title: str) -> Panel:
    return Panel("row", title, width=GRID_WIDTH, height=1)


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> Json:
    body: Json = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
    }
    if panel.kind == "row":
        return body | {"collapsed": False, "panels": []}
    body["datasource"] = DATASOURCE
    if panel.description:
        body["description"] = panel.description
    body["targets"] = [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "expr": q.expr,
            "legendFormat": q.legend or "__auto",
        }
        for i, q in enumerate(panel.queries)
    ]
    body["fieldConfig"] = {"defaults": {"unit": panel.unit, **panel.defaults}, "overrides": []}
    body["options"] = panel.options
    return body


def dashboard(uid: str, title: str, description: str, panels: list[Panel]) -> Json:
    """A dashboard whose panels fill the grid left to right, top to bottom."""
    laid_out: list[Json] = []
    x = y = line_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        if panel.kind == "row" or x + panel.width > GRID_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        laid_out.append(_panel_json(panel, panel_id, x, y))
        x += panel.width
        line_height = max(line_height, panel.height)
        if panel.kind == "row":
            x, y, line_height = 0, y + panel.height, 0
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["shortener"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [
            {"type": "dashboards", "tags": ["shortener"], "asDropdown": True, "title": "Dashboards"}
        ],
        "panels": laid_out,
    }
