"""The webhooks dashboard: what the service owes, what it delivers, and to whom it gives up.

    clicks, links topics -> webhooks consumer (fan-out) -> deliveries owed (Postgres)
                         -> dispatcher -> endpoint (delivered | failed | timeout | refused)

Read it top to bottom: the backlog says whether the service keeps up, the
outcomes and latencies whether the receivers do, and disabled endpoints are
receivers that failed for long enough to be given up on.
"""

from __future__ import annotations

from infra.grafana.panels import RATE, Json, Query, dashboard, row, stat, timeseries

__all__ = ["webhooks"]

DELIVERIES = f"sum by (outcome) (rate(webhook_deliveries_total{RATE}))"
FAILED_RATIO = (
    f'sum(rate(webhook_deliveries_total{{outcome!="delivered"}}{RATE}))'
    f" / sum(rate(webhook_deliveries_total{RATE}))"
)


def webhooks() -> Json:
    return dashboard(
        "shortener-webhooks",
        "Shortener: webhooks",
        "Events fanned out to endpoints, the backlog of deliveries owed, attempts by outcome.",
        [
            stat("Backlog (due, not attempted)", "max(webhook_backlog)", red_from=1000),
            stat(
                "Oldest due delivery",
                "max(webhook_backlog_oldest_seconds)",
                unit="s",
                red_from=300,
                description="WebhookBacklogGrowing fires above 5 minutes for 10.",
            ),
            stat(
                "Attempts failing",
                FAILED_RATIO,
                unit="percentunit",
                red_from=0.5,
                description="Of all endpoints together; one dead endpoint alone rarely moves it.",
            ),
            stat(
                "Endpoints disabled, last day",
                "sum(increase(webhook_endpoints_disabled_total[1d]))",
                red_from=1,
            ),
            row("Owed"),
            timeseries(
                "Events fanned out by type",
                Query(
                    f"sum by (type) (rate(webhook_events_fanned_out_total{RATE}))",
                    "{{type}}",
                ),
                unit="ops",
                description="Deliveries recorded as owed, per event type, before offsets commit.",
            ),
            timeseries(
                "Backlog",
                Query("max(webhook_backlog)", "due deliveries"),
                Query("max(webhook_backlog_oldest_seconds)", "oldest, seconds"),
            ),
            row("Delivered"),
            timeseries("Attempts by outcome", Query(DELIVERIES, "{{outcome}}"), unit="ops"),
            timeseries(
                "Attempts by attempt number",
                Query(
                    f"sum by (attempt) (rate(webhook_deliveries_total{RATE}))",
                    "attempt {{attempt}}",
                ),
                unit="ops",
                description="Retries climbing while first attempts stay flat: receivers are down.",
            ),
            timeseries(
                "Delivery latency p50 / p99 by outcome",
                Query(
                    "histogram_quantile(0.5, sum by (outcome, le) "
                    f"(rate(webhook_delivery_duration_seconds_bucket{RATE})))",
                    "p50 {{outcome}}",
                ),
                Query(
                    "histogram_quantile(0.99, sum by (outcome, le) "
                    f"(rate(webhook_delivery_duration_seconds_bucket{RATE})))",
                    "p99 {{outcome}}",
                ),
                unit="s",
            ),
            timeseries(
                "Endpoints disabled by reason",
                Query(
                    f"sum by (reason) (increase(webhook_endpoints_disabled_total{RATE}))",
                    "{{reason}}",
                ),
            ),
        ],
    )
