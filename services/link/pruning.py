"""What the link service's janitor deletes (services/chassis/janitor.py).

A module of its own, without the models: a process may load it beside
another service's tables (the tests do).
"""

from __future__ import annotations

from sqlalchemy import text

__all__ = ["PRUNE_OUTBOX"]

# Outbox rows the broker acknowledged before the cutoff, oldest first along
# the primary key; pending rows are never deleted, however old.
PRUNE_OUTBOX = text(
    "DELETE FROM outbox WHERE id IN ("
    " SELECT id FROM outbox WHERE published_at < :cutoff ORDER BY id LIMIT :batch)"
)
