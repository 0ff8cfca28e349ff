"""The resilience dashboard: breakers, bulkheads, retries, stale redirects, rate limits.

When a dependency fails, this is where the system shows how it copes: which
breaker opened and when, which bulkhead filled, how many retries the budget
allowed, and how many redirects the gateway answered from its stale cache.
"""

from __future__ import annotations

from infra.grafana.panels import RATE, Json, Query, dashboard, row, state_timeline, timeseries

__all__ = ["resilience"]


def resilience() -> Json:
    return dashboard(
        "shortener-resilience",
        "Shortener: resilience",
        "Circuit breakers, bulkheads, retries and degradation at the gateway and the link service.",
        [
            row("Circuit breakers"),
            state_timeline(
                "Breaker state",
                Query("max by (job, breaker) (circuit_breaker_state)", "{{job}} {{breaker}}"),
                states={0: ("closed", "green"), 1: ("open", "red"), 2: ("half-open", "yellow")},
                description="Gateway: link, user, analytics. Link service: redis.",
            ),
            timeseries(
                "Transitions",
                Query(
                    "sum by (job, breaker, state) "
                    f"(increase(circuit_breaker_transitions_total{RATE}))",
                    "{{breaker}} -> {{state}}",
                ),
                width=24,
            ),
            row("Bulkheads and upstream calls (gateway)"),
            timeseries(
                "Requests in flight per upstream",
                Query("sum by (bulkhead) (bulkhead_in_flight)", "{{bulkhead}}"),
            ),
            timeseries(
                "Bulkhead rejections",
                Query(f"sum by (bulkhead) (rate(bulkhead_rejections_total{RATE}))", "{{bulkhead}}"),
                unit="ops",
            ),
            timeseries(
                "Upstream failures by reason",
                Query(
                    f"sum by (upstream, reason) (rate(gateway_upstream_failures_total{RATE}))",
                    "{{upstream}} {{reason}}",
                ),
                unit="ops",
            ),
            timeseries(
                "Retries",
                Query(
                    f"sum by (upstream, result) (rate(gateway_upstream_retries_total{RATE}))",
                    "{{upstream}} {{result}}",
                ),
                unit="ops",
                description="budget_exhausted: a retry the budget refused (no retry storm).",
            ),
            row("Degradation and rate limits"),
            timeseries(
                "Stale redirects",
                Query(f"sum(rate(gateway_stale_redirects_total{RATE}))", "served/s"),
                Query("sum(gateway_stale_cache_entries)", "entries held"),
            ),
            timeseries(
                "Rate-limit decisions by policy",
                Query(
                    f"sum by (policy, decision) (rate(gateway_ratelimit_decisions_total{RATE}))",
                    "{{policy}} {{decision}}",
                ),
                unit="ops",
                description="error: Redis away; the policy then fails open or closed.",
            ),
        ],
    )
