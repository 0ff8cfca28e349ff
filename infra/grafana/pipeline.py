"""The click pipeline dashboard: from a redirect's click event to the rollups.

    link service buffer -> broker (topic clicks) -> analytics consumer -> Postgres
    link service outbox -> broker (topic links)  -> analytics consumer

Read it left to right: a problem shows first where the events pile up
(buffer depth, outbox pending, consumer lag), then where they are lost
(drops, dead letters).
"""

from __future__ import annotations

from infra.grafana.panels import RATE, Json, Query, dashboard, row, stat, timeseries

__all__ = ["click_pipeline"]

# By job: analytics and webhooks consume the same topics, each in its own group.
LAG = "sum by (job, topic) (max by (job, topic, partition) (consumer_lag))"


def click_pipeline() -> Json:
    return dashboard(
        "shortener-pipeline",
        "Shortener: click pipeline",
        "Click events from the redirect to the rollups, and link events through the outbox.",
        [
            stat(
                "Clicks counted/s",
                f"sum(rate(analytics_events_counted_total{RATE}))",
                unit="ops",
            ),
            stat(
                "Consumer lag, clicks",
                'sum(max by (partition) (consumer_lag{job="analytics", topic="clicks"}))',
                red_from=5000,
            ),
            stat(
                "Events dropped, last hour",
                "sum(increase(events_dropped_total[1h]))",
                red_from=1,
                description="Every dropped click event is a click that is never counted.",
            ),
            stat("Outbox pending", "max(outbox_pending)", red_from=1000),
            row("Produced"),
            timeseries(
                "Redirects served and clicks counted",
                Query(
                    "sum(rate(http_requests_total"
                    f'{{job="gateway", route="/{{code}}", status=~"3.."}}{RATE}))',
                    "redirects (gateway)",
                ),
                Query(f"sum(rate(analytics_events_counted_total{RATE}))", "clicks counted"),
                unit="ops",
                description="The lines meet when counting keeps up; a lasting gap is lag or loss.",
            ),
            timeseries(
                "Events published by process and topic",
                Query(
                    f"sum by (job, topic) (rate(events_published_total{RATE}))", "{{job}} {{topic}}"
                ),
                unit="ops",
            ),
            timeseries(
                "Events waiting in memory",
                Query(
                    "max by (job, instance, topic) (events_buffer_depth)", "{{instance}} {{topic}}"
                ),
                description="The buffer holds 100,000 events by default; when full, events drop.",
            ),
            timeseries(
                "Broker connected",
                Query(
                    "min by (job, instance, topic) (events_broker_connected)",
                    "{{instance}} {{topic}}",
                ),
            ),
            timeseries(
                "Send failures and drops",
                Query(
                    f"sum by (job, topic) (rate(events_send_failures_total{RATE}))",
                    "failed batches {{job}} {{topic}}",
                ),
                Query(
                    f"sum by (job, topic, reason) (rate(events_dropped_total{RATE}))",
                    "dropped {{job}} {{topic}} {{reason}}",
                ),
                unit="ops",
                width=24,
            ),
            row("Consumed"),
            timeseries("Consumer lag by group and topic", Query(LAG, "{{job}} {{topic}}")),
            timeseries(
                "Events counted by kind",
                Query(f"sum by (kind) (rate(analytics_events_counted_total{RATE}))", "{{kind}}"),
                unit="ops",
            ),
            timeseries(
                "Batch time, p50 and p99",
                Query(
                    "histogram_quantile(0.5, sum by (job, topic, le) "
                    f"(rate(consumer_batch_seconds_bucket{RATE})))",
                    "p50 {{job}} {{topic}}",
                ),
                Query(
                    "histogram_quantile(0.99, sum by (job, topic, le) "
                    f"(rate(consumer_batch_seconds_bucket{RATE})))",
                    "p99 {{job}} {{topic}}",
                ),
                unit="s",
            ),
            timeseries(
                "Duplicates skipped, retries, commit failures",
                Query(
                    f"sum by (topic) (rate(analytics_duplicates_skipped_total{RATE}))",
                    "duplicates {{topic}}",
                ),
                Query(
                    f"sum by (job, topic) (rate(consumer_batch_retries_total{RATE}))",
                    "batch retries {{job}} {{topic}}",
                ),
                Query(
                    f"sum by (job, topic) (rate(consumer_offset_commit_failures_total{RATE}))",
                    "commit failures {{job}} {{topic}}",
                ),
                unit="ops",
                description="Redeliveries, skipped by event id: counting stays exact.",
            ),
            timeseries(
                "Dead-lettered",
                Query(
                    f"sum by (job, topic, reason) (rate(consumer_dead_lettered_total{RATE}))",
                    "{{job}} {{topic}} {{reason}}",
                ),
                unit="ops",
            ),
            timeseries(
                "Unique visitors not recorded",
                Query(f"sum(rate(analytics_unique_visitors_skipped_total{RATE}))", "skipped"),
                unit="ops",
                description="Counted while Redis was away: totals exact, unique visitors low.",
            ),
            row("Link events (outbox)"),
            timeseries(
                "Outbox",
                Query("max(outbox_pending)", "pending"),
                Query(f"sum(rate(outbox_published_total{RATE}))", "published/s"),
                Query(f"sum(rate(outbox_publish_failures_total{RATE}))", "failed rounds/s"),
            ),
            timeseries(
                "Link changes applied by analytics",
                Query(f"sum by (type) (rate(analytics_link_changes_total{RATE}))", "{{type}}"),
                unit="ops",
            ),
        ],
    )
