"""What the webhooks janitors delete (services/chassis/janitor.py).

A module of its own, without the models: a process may load it beside
another service's tables.
"""

from __future__ import annotations

from sqlalchemy import text

__all__ = ["PRUNE_FINISHED_DELIVERIES", "PRUNE_PARKED_CLICKS"]

# Delivered or given up long enough ago, with their attempts (cascade) and
# their claims: a claim must outlive every chance of its event being
# consumed again, so the retention is never below the topics' (7 days).
PRUNE_FINISHED_DELIVERIES = text(
    "WITH old AS (SELECT id FROM deliveries WHERE state <> 'pending' AND finished_at < :cutoff"
    " ORDER BY finished_at LIMIT :batch),"
    " claims AS (DELETE FROM delivery_events WHERE delivery_id IN (SELECT id FROM old))"
    " DELETE FROM deliveries WHERE id IN (SELECT id FROM old)"
)
# Clicks whose link never became known.
PRUNE_PARKED_CLICKS = text(
    "DELETE FROM parked_clicks WHERE event_id IN ("
    " SELECT event_id FROM parked_clicks WHERE parked_at < :cutoff LIMIT :batch)"
)
