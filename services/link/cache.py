"""The resolve cache: Redis, cache-aside, with negative entries and leases.

A value is what a redirect needs and nothing more. An unknown code is cached
as an empty value for a short time, so a scan of random codes costs Redis
lookups, not Postgres queries. A Redis failure is a miss: the cache makes
redirects fast, never makes them fail. After a few failures in a row the
breaker stops calling Redis for a while (every lookup is then a miss, counted
as ``bypassed``), so a hung Redis costs nothing per request instead of a
timeout per request; one trial call then finds out whether it is back.

A load is fenced by a lease, so that a reader that read the row before a
change can never put it back after the change deleted the entry. Before it
reads Postgres, the loader puts a unique token in the entry (``SET NX``: a
token already there is shared, an entry already there is a hit); it writes
the loaded value only if its token is still there (a compare-and-set in
Lua). A change deletes the entry, and the token with it, after its commit,
so a load that began before the commit writes nothing
(``link_cache_writes_total{result="fenced"}``). No clock is involved: a
token that expires or is evicted fences its load, it never lets one through.
The hit path is the one GET it always was; a miss pays one more round trip.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar, cast

import orjson
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.chassis.breaker import Breaker, BreakerOpen

__all__ = ["NEGATIVE", "CachedLink", "Lease", "LinkCache"]

log = logging.getLogger(__name__)
CACHE_LOOKUPS = Counter("link_cache_lookups_total", "Resolve cache lookups by result.", ["result"])
_HIT, _MISS, _NEG, _ERR, _BYPASSED = (
    CACHE_LOOKUPS.labels(r) for r in ("hit", "miss", "negative_hit", "error", "bypassed")
)
CACHE_WRITES = Counter(
    "link_cache_writes_total",
    "Resolve cache writes after a load from Postgres, by result; fenced: changed during the load.",
    ["result"],
)
_WRITTEN, _FENCED, _WRITE_ERR, _WRITE_BYPASSED = (
    CACHE_WRITES.labels(r) for r in ("written", "fenced", "error", "bypassed")
)

# Long enough for any one load (statements time out after 5 s). Safety does
# not depend on it: an expired lease fences its load. It only bounds how long
# the token of a load that failed takes room; the next miss shares it anyway.
LEASE_SECONDS: Final = 30
_LEASE_PREFIX: Final = b"lease:"
# SET only if the entry still holds the caller's lease. (Redis 8.4's
# SET ... IFEQ does this without a script; the deployments run Redis 7.)
_FILL_SCRIPT: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
    return 1
end
return 0
"""
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class CachedLink:
    """What a redirect needs: where to, how, and until when (epoch seconds).

    ``limited`` marks a link with a visit limit: its entry only says "go and
    count in Postgres" (resolver.py), it never serves a redirect by itself.
    ``exhausted`` marks one whose limit is reached: its visits are refused
    without Postgres, until a change (a raised limit) deletes the entry.
    """

    url: str
    redirect_type: int
    expires_at: float | None
    limited: bool = False
    exhausted: bool = False

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


class _Negative:
    """The cached knowledge that a code does not exist."""


NEGATIVE: Final = _Negative()
_NEGATIVE_VALUE = b""


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to fill an entry, taken before the load: lost to any change since."""

    token: bytes


class LinkCache:
    def __init__(
        self, redis: Redis, breaker: Breaker, *, ttl_seconds: int, negative_ttl_seconds: int
    ) -> None:
        self.redis = redis
        self.breaker = breaker
        self.ttl = ttl_seconds
        self.negative_ttl = negative_ttl_seconds
        self._fill = redis.register_script(_FILL_SCRIPT)

    @staticmethod
    def key(code: str) -> str:
        # v2 added the "limited" flag: a v1 reader would have served limited
        # links from the cache without counting them. v3 added leases and the
        # "exhausted" flag: a v2 reader fails to decode either. The versions
        # never share entries.
        return f"link:v3:{code}"

    async def get(self, code: str) -> CachedLink | _Negative | None:
        """The cached link, NEGATIVE for a known-unknown code, None on a miss."""
        try:
            with self.breaker.guard():
                # The client does not decode: values are bytes.
                raw = cast("bytes | None", await self.redis.get(self.key(code)))
        except BreakerOpen:
            _BYPASSED.inc()
            return None
        except (RedisError, OSError) as exc:
            _ERR.inc()
            log.warning("cache read failed", extra={"error": repr(exc)})
            return None
        if raw is None or raw.startswith(_LEASE_PREFIX):
            _MISS.inc()
            return None
        if raw == _NEGATIVE_VALUE:
            _NEG.inc()
            return NEGATIVE
        _HIT.inc()
        return CachedLink(*orjson.loads(raw))

    async def lease(self, code: str) -> Lease | CachedLink | _Negative | None:
        """A lease to load a missed code under, or the entry if it was filled meanwhile.

        None when Redis is unavailable: the caller loads and writes nothing.
        """
        held = await self._write(lambda: self._take_lease(code))
        if held is None:
            return None
        if held.startswith(_LEASE_PREFIX):
            return Lease(held)
        return _decode(held)

    async def fresh_lease(self, code: str) -> Lease | None:
        """A new lease over whatever the entry holds, which the caller knows is out of date."""
        token = _new_token()
        done = await self._write(lambda: self.redis.set(self.key(code), token, ex=LEASE_SECONDS))
        return Lease(token) if done else None

    async def fill(self, code: str, entry: CachedLink | _Negative, lease: Lease) -> None:
        """Remember a load, unless the entry changed since ``lease`` was taken.

        A link is kept the full TTL even past its expiry: a hit checks the
        expiry (resolver.py), so an expired link is refused by Redis alone.
        """
        ttl = self.ttl if isinstance(entry, CachedLink) else self.negative_ttl
        args: list[bytes | int] = [lease.token, _encode(entry), ttl]
        written = await self._write(lambda: self._fill(keys=[self.key(code)], args=args))
        if written is not None:
            (_WRITTEN if written else _FENCED).inc()

    async def invalidate(self, code: str) -> None:
        """Forget a code, so the next redirect sees the database's truth.

        Deleting the entry also takes the lease of any load in progress, so
        that load cannot write what it read before the change. Tried even
        while the breaker is open: writes are rare, and a missed invalidation
        would serve the old state until the entry's TTL.
        """
        try:
            await self.redis.delete(self.key(code))
        except (RedisError, OSError) as exc:
            log.warning("cache invalidation failed", extra={"code": code, "error": repr(exc)})

    async def _take_lease(self, code: str) -> bytes:
        """What the entry holds once a lease was asked for: ours, another's, or a value."""
        token = _new_token()
        held = await self.redis.set(self.key(code), token, nx=True, ex=LEASE_SECONDS, get=True)
        return token if held is None else cast(bytes, held)

    async def _write(self, command: Callable[[], Awaitable[_T]]) -> _T | None:
        """A write through the breaker; None, counted, when it could not be made."""
        try:
            with self.breaker.guard():
                return await command()
        except BreakerOpen:
            _WRITE_BYPASSED.inc()
        except (RedisError, OSError) as exc:
            _WRITE_ERR.inc()
            log.warning("cache write failed", extra={"error": repr(exc)})
        return None


def _new_token() -> bytes:
    return _LEASE_PREFIX + os.urandom(8).hex().encode()


def _encode(entry: CachedLink | _Negative) -> bytes:
    if not isinstance(entry, CachedLink):
        return _NEGATIVE_VALUE
    fields = [entry.url, entry.redirect_type, entry.expires_at, entry.limited, entry.exhausted]
    return orjson.dumps(fields)


def _decode(raw: bytes) -> CachedLink | _Negative:
    # The fields in the order _encode writes them.
    return NEGATIVE if raw == _NEGATIVE_VALUE else CachedLink(*orjson.loads(raw))
