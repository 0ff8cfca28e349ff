"""What an operator watches on every consumer of a topic, in any service.

``consumer_lag`` is the first thing to look at: it grows when a consumer
falls behind, whatever the cause (a slow database, an outage, a batch that
keeps failing), and the log says which. Each service's consumers are told
apart by the scrape's ``job`` (analytics, webhooks) and by ``topic``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["BATCH_RETRIES", "BATCH_SECONDS", "COMMIT_FAILURES", "CONSUMER_LAG", "DEAD_LETTERED"]

DEAD_LETTERED = Counter(
    "consumer_dead_lettered_total",
    "Poison messages set aside: sent to the dead-letter topic (clicks.dlq, by analytics), or "
    "logged and skipped where the consumer has none.",
    ["topic", "reason"],
)
CONSUMER_LAG = Gauge(
    "consumer_lag",
    "Messages on the broker not yet consumed (highwater - position), per partition.",
    ["topic", "partition"],
)
BATCH_SECONDS = Histogram(
    "consumer_batch_seconds",
    "Time to process one batch, from decoding to the offset commit (retries included).",
    ["topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_RETRIES = Counter(
    "consumer_batch_retries_total",
    "Attempts at a batch that failed (database or broker away) and were tried again.",
    ["topic"],
)
COMMIT_FAILURES = Counter(
    "consumer_offset_commit_failures_total",
    "Offset commits refused after the batch was written; its events come again and are skipped.",
    ["topic"],
)
