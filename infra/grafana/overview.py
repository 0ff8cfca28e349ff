"""The overview dashboard: the golden signals of every service.

Expressions use the recording rules of infra/prometheus/rules/recording.yml
where one exists (cheap to draw over days), and ``$__rate_interval`` elsewhere.
"""

from __future__ import annotations

from infra.grafana.panels import RATE, Json, Query, dashboard, row, stat, timeseries

__all__ = ["overview"]


def overview() -> Json:
    return dashboard(
        "shortener-overview",
        "Shortener: overview",
        "The golden signals of every service: traffic, errors, latency, saturation.",
        [
            stat(
                "Processes up",
                'sum(up{job=~"gateway|link|user|analytics|webhooks"})',
                description="Scrape targets answering /metrics.",
            ),
            stat(
                "Requests/s, all services",
                "sum(job:http_requests:rate5m)",
                unit="reqps",
            ),
            stat(
                "5xx share, worst service",
                "max(job:http_requests_error_ratio:rate5m)",
                unit="percentunit",
                red_from=0.05,
            ),
            stat(
                "p99 latency, slowest service",
                "max(job:http_request_duration_seconds:p99_5m)",
                unit="s",
                red_from=0.5,
            ),
            row("Traffic and errors"),
            timeseries(
                "Requests/s by service", Query("job:http_requests:rate5m", "{{job}}"), unit="reqps"
            ),
            timeseries(
                "5xx share by service",
                Query("job:http_requests_error_ratio:rate5m", "{{job}}"),
                unit="percentunit",
                description="4xx answers are correct answers and are not counted.",
            ),
            timeseries(
                "Busiest routes",
                Query("topk(10, job_route:http_requests:rate5m)", "{{job}} {{route}}"),
                unit="reqps",
            ),
            timeseries(
                "5xx by route and status",
                Query(
                    "sum by (job, route, status) "
                    f'(rate(http_requests_total{{status=~"5.."}}{RATE}))',
                    "{{job}} {{route}} {{status}}",
                ),
                unit="reqps",
            ),
            row("Latency"),
            timeseries(
                "p50 and p99 by service",
                Query("job:http_request_duration_seconds:p50_5m", "p50 {{job}}"),
                Query("job:http_request_duration_seconds:p99_5m", "p99 {{job}}"),
                unit="s",
            ),
            timeseries(
                "p99 by route",
                Query("job_route:http_request_duration_seconds:p99_5m", "{{job}} {{route}}"),
                unit="s",
            ),
            row("Saturation"),
            timeseries(
                "Requests in flight",
                Query("job:http_requests_in_flight:sum", "{{job}}"),
                description="Requests being answered at the scrape: a queue shows here first.",
            ),
            timeseries(
                "Database pool in use",
                Query("job_database:db_pool_in_use:ratio", "{{job}} {{database}}"),
                unit="percentunit",
                description="Above 90% for 5 minutes: DatabasePoolSaturated.",
            ),
            timeseries(
                "Database connections by state",
                Query("sum by (job, state) (db_pool_connections)", "{{job}} {{state}}"),
                width=24,
            ),
            row("Accounts (user service)"),
            timeseries(
                "Logins, registrations, refreshes by result",
                Query(f"sum by (result) (rate(user_logins_total{RATE}))", "login {{result}}"),
                Query(
                    f"sum by (result) (rate(user_registrations_total{RATE}))",
                    "register {{result}}",
                ),
                Query(
                    f"sum by (result) (rate(user_token_refreshes_total{RATE}))",
                    "refresh {{result}}",
                ),
                unit="ops",
            ),
            timeseries(
                "API key checks by result",
                Query(
                    f"sum by (result) (rate(user_api_key_verifications_total{RATE}))",
                    "{{result}}",
                ),
                unit="ops",
            ),
        ],
    )
