"""RED metrics (rate, errors, duration) for every process, per route template.

Recorded by the outermost ASGI middleware (``services.chassis.http.RequestMiddleware``),
so it times everything the process does for a request, the error handlers
included. A request the client left before any answer counts as 499, one
whose app raised as 500. The ``route`` label is bounded by construction:

1. ``scope["route_template"]`` when set (the gateway's edge sets it for the
   paths it proxies: ``/{code}``, ``/api/v1/links/*``, ...);
2. else the path format of the Starlette route that matched
   (``/api/v1/links/{code}``), which routing writes into the same scope;
3. else ``unmatched``: a raw path never becomes a label value, so a scan of
   random URLs cannot create one time series per URL.

Methods outside the standard set become ``other`` for the same reason.

This runs on every redirect, so the per-request work is kept to two clock
reads, one dictionary look-up and two metric updates: label children are
bound once per (method, route, status) and reused, instead of paying
``labels()`` (a lock, a tuple and a dict look-up in the client) each time,
and the in-flight gauge is a plain integer read at scrape time (one event
loop per process: no lock needed). Measured cost: docs/observability.md.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import Scope

__all__ = [
    "DURATION_BUCKETS",
    "REQUESTS",
    "REQUESTS_IN_FLIGHT",
    "REQUEST_DURATION",
    "RequestMetrics",
    "route_label",
]

# From half a millisecond (a cache hit answered in-process) to ten seconds (a
# request that ran into every timeout); 0.1 s is the redirect latency objective
# (docs/observability.md), so it must be a bucket boundary.
DURATION_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route template.",
    ["method", "route"],
    buckets=DURATION_BUCKETS,
)
REQUESTS_IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being answered now.")
_in_flight = 0
REQUESTS_IN_FLIGHT.set_function(lambda: _in_flight)

UNMATCHED: Final = "unmatched"
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(scope: Scope) -> str:
    """The bounded ``route`` label of a request whose routing has run."""
    template = scope.get("route_template")
    if template is not None:
        return str(template)
    route = scope.get("route")
    path_format = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path_format) if path_format else UNMATCHED


class RequestMetrics:
    """Counts and times requests; see the module docstring for the labels.

    Called by ``services.chassis.http.RequestMiddleware``, which wraps each
    request once for its id, its metrics and its access line."""

    def __init__(self) -> None:
        # (method, route, status) -> its (histogram, counter) children; bounded
        # like the labels themselves: methods x routes x statuses.
        self._children: dict[tuple[str, str, int], tuple[Histogram, Counter]] = {}

    @staticmethod
    def enter() -> None:
        global _in_flight  # noqa: PLW0603 -- one per process, read by the gauge at scrape time
        _in_flight += 1

    def leave(self, scope: Scope, status: int, seconds: float) -> None:
        global _in_flight  # noqa: PLW0603
        _in_flight -= 1
        self._record(scope, status, seconds)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"]
        if method not in _METHODS:
            method = "other"
        key = (method, route_label(scope), status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                REQUEST_DURATION.labels(key[0], key[1]),
                REQUESTS.labels(key[0], key[1], str(status)),
            )
        children[0].observe(seconds)
        children[1].inc()
