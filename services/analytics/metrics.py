"""What an operator watches on the analytics service, besides its consumers.

The consumers' own metrics (lag, batches, dead letters) are every
consumer's: services/chassis/consumer_metrics.py. ``consumer_lag`` is the
first thing to look at when counting falls behind.
"""

from __future__ import annotations

from prometheus_client import Counter

__all__ = [
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
VISITORS_SKIPPED = Counter(
    "analytics_unique_visitors_skipped_total",
    "Clicks whose visitor was not recorded because Redis was unavailable.",
)
LINK_CHANGES_APPLIED = Counter(
    "analytics_link_changes_total", "LinkChanged events applied to the links table.", ["type"]
)
