"""What the analytics janitor deletes (services/chassis/janitor.py).

A module of its own, without the models: a process may load it beside
another service's tables (the tests do).
"""

from __future__ import annotations

from sqlalchemy import text

__all__ = ["PRUNE_PROCESSED_EVENTS"]

# Claims older than any event the topic can still deliver (services/chassis/janitor.py);
# the oldest first, by ix_processed_events_processed_at.
PRUNE_PROCESSED_EVENTS = text(
    "DELETE FROM processed_events WHERE event_id IN ("
    " SELECT event_id FROM processed_events WHERE processed_at < :cutoff"
    " ORDER BY processed_at LIMIT :batch)"
)
