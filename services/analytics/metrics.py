"""What an operator watches on the analytics service, in one place.

``analytics_consumer_lag`` is the first thing to look at: it grows when
counting falls behind, whatever the cause (a slow database, an outage, a
batch that keeps failing), and the log says which.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BATCH_RETRIES",
    "BATCH_SECONDS",
    "COMMIT_FAILURES",
    "CONSUMER_LAG",
    "DEAD_LETTERED",
    "DUPLICATES_SKIPPED",
    "EVENTS_COUNTED",
    "LINK_CHANGES_APPLIED",
    "VISITORS_SKIPPED",
]

EVENTS_COUNTED = Counter(
    "analytics_events_counted_total", "Clicks counted into the rollups, by human or bot.", ["kind"]
)
DUPLICATES_SKIPPED = Counter(
    "analytics_duplicates_skipped_total",
    "Events not applied because their id was already processed (redeliveries, duplicates).",
    ["topic"],
)
DEAD_LETTERED = Counter(
    "analytics_dead_lettered_total",
    "Poison messages set aside: sent to the dead-letter topic (clicks.dlq), or logged and "
    "skipped where the topic has none (links).",
    ["topic", "reason"],
)
CONSUMER_LAG = Gauge(
    "analytics_consumer_lag",
    "Messages on the broker not yet consumed (highwater - position), per partition.",
    ["topic", "partition"],
)
BATCH_SECONDS = Histogram(
    "analytics_batch_seconds",
    "Time to process one batch, from decoding to the offset commit (retries included).",
    ["topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_RETRIES = Counter(
    "analytics_batch_retries_total",
    "Attempts at a batch that failed (database or broker away) and were tried again.",
    ["topic"],
)
COMMIT_FAILURES = Counter(
    "analytics_offset_commit_failures_total",
    "Offset commits refused after the batch was written; its events come again and are skipped.",
    ["topic"],
)
VISITORS_SKIPPED = Counter(
    "analytics_unique_visitors_skipped_total",
    "Clicks whose visitor was not recorded because Redis was unavailable.",
)
LINK_CHANGES_APPLIED = Counter(
    "analytics_link_changes_total", "LinkChanged events applied to the links table.", ["type"]
)
