"""A redirect as the link service answers it, and its published read model.

The link service decides every redirect; this module is the part of that
answer both sides must agree on byte for byte: the headers it is sent with,
and the read model's entry (docs/adr/0022-the-redirect-read-model.md).

**The read model.** For each link it has loaded into its cache and that a
gateway may answer by itself (no visit limit, not expiring within a
second), the link service keeps ``redirect:v1:{code}`` in its Redis: the
``Redirect`` below, as JSON. It is the only writer: the entry is written by
the same atomic fill that caches the link, deleted by the same pipeline that
fences a change (services/link/cache.py), and expires with the link. A
gateway that does not find it in memory reads it (gateway/readmodel.py) and
answers with exactly the headers the link service would have sent, at the
time it answers; anything else (no entry, an entry it cannot read, Redis
away) goes to the link service as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

__all__ = [
    "MAX_STALE_TTL",
    "PERMANENT_REDIRECTS",
    "STALE_TTL_HEADER",
    "Redirect",
    "read_model_key",
]

PERMANENT_REDIRECTS: Final = frozenset({301, 308})
REDIRECT_STATUSES: Final = frozenset({301, 302, 307, 308})
# How long a gateway may replay a redirect while the link service is down:
# the link's remaining life, at most a day (the gateway caps it further).
STALE_TTL_HEADER: Final = "x-redirect-stale-ttl"
MAX_STALE_TTL: Final = 86_400
# v1: [status, url, expires_at, max_age]. A reader that finds anything else
# treats the entry as absent; a new shape gets a new version, never shares keys.
_READ_MODEL_PREFIX: Final = "redirect:v1:"


def read_model_key(code: str) -> str:
    return _READ_MODEL_PREFIX + code


@dataclass(frozen=True, slots=True)
class Redirect:
    """Where a link sends a visitor, and for how long that answer may be reused.

    ``max_age``: how long a browser may keep it (a permanent redirect
    without a visit limit), capped by the link's remaining life; None: every
    visit must reach us to be counted. ``replayable``: a gateway may answer
    it without the link service (not visit-limited: such a visit must be
    counted in Postgres before it is let through).
    """

    status: int
    url: str
    expires_at: float | None  # epoch seconds
    max_age: int | None
    replayable: bool = True

    def remaining(self, now: float) -> int | None:
        """Whole seconds of life left (never negative); None: the link does not expire."""
        return None if self.expires_at is None else max(0, int(self.expires_at - now))

    def headers(self, now: float) -> list[tuple[str, str]]:
        """The answer's headers at ``now``: ``Location``, ``Cache-Control`` and,
        when it may be replayed, ``x-redirect-stale-ttl``."""
        remaining = self.remaining(now)
        if self.max_age is not None:
            max_age = self.max_age if remaining is None else min(self.max_age, remaining)
            cache_control = f"public, max-age={max_age}"
        else:
            cache_control = "private, no-store"
        headers = [("location", self.url), ("cache-control", cache_control)]
        stale_ttl = MAX_STALE_TTL if remaining is None else min(MAX_STALE_TTL, remaining)
        if self.replayable and stale_ttl > 0:
            headers.append((STALE_TTL_HEADER, str(stale_ttl)))
        return headers

    def published_for(self, ttl_seconds: int, now: float) -> int:
        """How long the read model may hold it (whole seconds); 0: not at all.

        Never past the link's end (Redis expires the entry, whatever the
        readers' clocks), and never a link whose visits must be counted.
        """
        if not self.replayable:
            return 0
        remaining = self.remaining(now)
        return ttl_seconds if remaining is None else min(ttl_seconds, remaining)

    def encode(self) -> bytes:
        return orjson.dumps([self.status, self.url, self.expires_at, self.max_age])

    @classmethod
    def decode(cls, raw: bytes) -> Redirect:
        """The entry ``encode`` wrote; ValueError for anything else."""
        try:
            status, url, expires_at, max_age = orjson.loads(raw)
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            raise ValueError(f"not a read model entry: {exc}") from exc
        if (
            not isinstance(status, int)
            or status not in REDIRECT_STATUSES
            or not isinstance(url, str)
            or not (expires_at is None or isinstance(expires_at, int | float))
            or not (max_age is None or (isinstance(max_age, int) and max_age >= 0))
        ):
            raise ValueError("not a read model entry: a field out of range")
        return cls(status, url, expires_at, max_age)
