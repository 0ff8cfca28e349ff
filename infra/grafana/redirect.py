"""The redirect path dashboard: GET /{code} against its SLOs, and what it leans on."""

from __future__ import annotations

from infra.grafana.panels import RATE, Json, Query, dashboard, row, stat, timeseries

__all__ = ["redirect_path"]

REDIRECTS = 'job="gateway", route="/{code}"'
LINK_LOOKUPS = 'job="link", route=~"/{code}|/internal/redirects"'


def _redirect_quantiles(selector: str) -> tuple[Query, ...]:
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by (le) (rate(http_request_duration_seconds_bucket"
            f"{{{selector}}}{RATE})))",
            f"p{round(q * 100)}",
        )
        for q in (0.5, 0.9, 0.99)
    )


def redirect_path() -> Json:
    return dashboard(
        "shortener-redirect",
        "Shortener: redirect path",
        "GET /{code} end to end: the SLOs (99.9% answered without 5xx, 99% within 100 ms, "
        "measured at the gateway), the cache, the rate limit and the stale fallback.",
        [
            stat(
                "Redirects/s", f"sum(rate(http_requests_total{{{REDIRECTS}}}{RATE}))", unit="reqps"
            ),
            stat(
                "5xx, last hour (objective 0.1%)",
                "slo:redirect_errors:ratio_rate1h",
                unit="percentunit",
                red_from=0.001,
            ),
            stat(
                "Slower than 100 ms, last hour (objective 1%)",
                "slo:redirect_slow:ratio_rate1h",
                unit="percentunit",
                red_from=0.01,
            ),
            stat(
                "Error budget left, 3-day pace",
                "1 - slo:redirect_errors:ratio_rate3d / 0.001",
                unit="percentunit",
                description="1 - burn rate over 3 days: below 0, the budget runs out early.",
            ),
            row("Service level"),
            timeseries(
                "Error budget burn rate",
                Query("slo:redirect_errors:ratio_rate5m / 0.001", "5m"),
                Query("slo:redirect_errors:ratio_rate1h / 0.001", "1h"),
                Query("slo:redirect_errors:ratio_rate6h / 0.001", "6h"),
                description="1 spends the 30-day budget in 30 days; pages at 14.4 (1h) and 6 (6h).",
            ),
            timeseries(
                "Latency budget burn rate",
                Query("slo:redirect_slow:ratio_rate5m / 0.01", "5m"),
                Query("slo:redirect_slow:ratio_rate1h / 0.01", "1h"),
                Query("slo:redirect_slow:ratio_rate6h / 0.01", "6h"),
                description="The share of redirects slower than 100 ms, over the 1% allowed.",
            ),
            timeseries(
                "Redirects by status",
                Query(
                    f"sum by (status) (rate(http_requests_total{{{REDIRECTS}}}{RATE}))",
                    "{{status}}",
                ),
                unit="reqps",
            ),
            timeseries(
                "Requests in flight, gateway and link service",
                Query('sum by (job) (http_requests_in_flight{job=~"gateway|link"})', "{{job}}"),
            ),
            row("Latency"),
            timeseries(
                "At the gateway (what visitors see)", *_redirect_quantiles(REDIRECTS), unit="s"
            ),
            timeseries(
                "At the link service",
                *_redirect_quantiles(LINK_LOOKUPS),
                unit="s",
                description="Batched lookups (POST /internal/redirects, ADR 0012) and the "
                "sampled visits the gateway sends on their own (GET /{code}).",
            ),
            row("Cache, limits, fallback"),
            timeseries(
                "Read model lookups at the gateways, by result",
                Query(
                    f"sum by (result) (rate(gateway_read_model_lookups_total{RATE}))", "{{result}}"
                ),
                unit="ops",
                description="Redirects not in a gateway's memory, looked up in the link "
                "service's read model (ADR 0022); all but hit go on to the link service.",
            ),
            timeseries(
                "Cache lookups by result",
                Query(f"sum by (result) (rate(link_cache_lookups_total{RATE}))", "{{result}}"),
                unit="ops",
                description="negative_hit: a known-unknown code answered 404 from Redis.",
            ),
            timeseries(
                "Cache hit ratio",
                Query(
                    f'sum(rate(link_cache_lookups_total{{result=~"hit|negative_hit"}}{RATE}))'
                    f" / sum(rate(link_cache_lookups_total{RATE}))",
                    "hits",
                ),
                unit="percentunit",
            ),
            timeseries(
                "Rate-limit decisions, redirect policy",
                Query(
                    "sum by (decision) (rate(gateway_ratelimit_decisions_total"
                    f'{{policy="redirect"}}{RATE}))',
                    "{{decision}}",
                ),
                unit="ops",
            ),
            timeseries(
                "Stale redirects served",
                Query(f"sum(rate(gateway_stale_redirects_total{RATE}))", "served"),
                unit="ops",
                description="Replayed by the gateway while the link service was unavailable.",
            ),
        ],
    )
