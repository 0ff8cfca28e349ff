"""The resolve cache: Redis, cache-aside, with negative entries.

A value is what a redirect needs and nothing more. An unknown code is cached
as an empty value for a short time, so a scan of random codes costs Redis
lookups, not Postgres queries. A Redis failure is a miss: the cache makes
redirects fast, never makes them fail. After a few failures in a row the
breaker stops calling Redis for a while (every lookup is then a miss, counted
as ``bypassed``), so a hung Redis costs nothing per request instead of a
timeout per request; one trial call then finds out whether it is back.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Final

import orjson
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.chassis.breaker import Breaker, BreakerOpen

__all__ = ["NEGATIVE", "CachedLink", "LinkCache"]

log = logging.getLogger(__name__)
CACHE_LOOKUPS = Counter("link_cache_lookups_total", "Resolve cache lookups by result.", ["result"])
_HIT, _MISS, _NEG, _ERR, _BYPASSED = (
    CACHE_LOOKUPS.labels(r) for r in ("hit", "miss", "negative_hit", "error", "bypassed")
)


@dataclass(frozen=True, slots=True)
class CachedLink:
    """What a redirect needs: where to, how, and until when (epoch seconds).

    ``limited`` marks a link with a visit limit: its entry only says "go and
    count in Postgres" (resolver.py), it never serves a redirect by itself.
    """

    url: str
    redirect_type: int
    expires_at: float | None
    limited: bool = False

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class _Negative:
    """The cached knowledge that a code does not exist."""


NEGATIVE: Final = _Negative()
_NEGATIVE_VALUE = b""


class LinkCache:
    def __init__(
        self, redis: Redis, breaker: Breaker, *, ttl_seconds: int, negative_ttl_seconds: int
    ) -> None:
        self.redis = redis
        self.breaker = breaker
        self.ttl = ttl_seconds
        self.negative_ttl = negative_ttl_seconds

    @staticmethod
    def key(code: str) -> str:
        # v2 added the "limited" flag: a v1 reader would have served limited
        # links from the cache without counting them, so the versions never
        # share entries.
        return f"link:v2:{code}"

    async def get(self, code: str) -> CachedLink | _Negative | None:
        """The cached link, NEGATIVE for a known-unknown code, None on a miss."""
        try:
            with self.breaker.guard():
                raw = await self.redis.get(self.key(code))
        except BreakerOpen:
            _BYPASSED.inc()
            return None
        except (RedisError, OSError) as exc:
            _ERR.inc()
            log.warning("cache read failed", extra={"error": repr(exc)})
            return None
        if raw is None:
            _MISS.inc()
            return None
        if raw == _NEGATIVE_VALUE:
            _NEG.inc()
            return NEGATIVE
        _HIT.inc()
        url, redirect_type, expires_at, limited = orjson.loads(raw)
        return CachedLink(url, redirect_type, expires_at, limited)

    async def put(self, code: str, link: CachedLink | _Negative) -> None:
        """Remember a lookup; a link is never kept past its expiry."""
        if isinstance(link, CachedLink):
            value = orjson.dumps([link.url, link.redirect_type, link.expires_at, link.limited])
            ttl = self.ttl
            if link.expires_at is not None:
                ttl = max(1, min(ttl, int(link.expires_at - time.time()) + 1))
        else:
            value, ttl = _NEGATIVE_VALUE, self.negative_ttl
        try:
            with self.breaker.guard():
                await self.redis.set(self.key(code), value, ex=ttl)
        except BreakerOpen:
            return
        except (RedisError, OSError) as exc:
            log.warning("cache write failed", extra={"error": repr(exc)})

    async def invalidate(self, code: str) -> None:
        """Forget a code, so the next redirect sees the database's truth.

        Tried even while the breaker is open: writes are rare, and a missed
        invalidation would serve the old target until the entry's TTL.
        """
        try:
            await self.redis.delete(self.key(code))
        except (RedisError, OSError) as exc:
            log.warning("cache invalidation failed", extra={"error": repr(exc)})
