"""What the user service's janitor deletes (services/chassis/janitor.py).

A module of its own, without the models: a process may load it beside
another service's tables (the tests do).
"""

from __future__ import annotations

from sqlalchemy import text

__all__ = ["PRUNE_REFRESH_TOKENS"]

# Whole logins (token families) whose newest token expired before the
# cutoff (services/chassis/janitor.py): a family goes at once, never a used
# token whose reuse must still revoke the live ones after it.
PRUNE_REFRESH_TOKENS = text(
    "DELETE FROM refresh_tokens WHERE family_id IN ("
    " SELECT family_id FROM refresh_tokens GROUP BY family_id"
    " HAVING max(expires_at) < :cutoff LIMIT :batch)"
)
