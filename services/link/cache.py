"""The resolve cache: Redis, cache-aside, with negative entries and tombstones.

A value is what a redirect needs and nothing more. An unknown code is cached
as an empty value for a short time, so a scan of random codes costs Redis
lookups, not Postgres queries. A Redis failure is a miss: the cache makes
redirects fast, never makes them fail. After a few failures in a row the
breaker stops calling Redis for a while (every lookup is then a miss, counted
as ``bypassed``), so a hung Redis costs nothing per request instead of a
timeout per request; one trial call then finds out whether it is back.

A load is fenced, so that a reader that read the row before a change can
never put it back after it. A change does not just delete the entry: it
leaves a tombstone there, a unique token. A lookup that misses keeps what it
saw (nothing, or a tombstone) as its ``Ticket``, from the one GET it makes
anyway; the loaded value is written only if the entry still holds exactly
that (a compare-and-set in Lua). A change in between has replaced it with a
new tombstone, so the write is refused
(``link_cache_writes_total{result="fenced"}``). Hits and misses make the
round trips they always made.

The same fill publishes the link's entry in the redirect read model that
gateways read (services/chassis/redirects.py, ADR 0022), and the same
tombstone pipeline deletes it: a change reaches both, or neither.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar, cast

import orjson
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.chassis.breaker import Breaker, BreakerOpen
from services.chassis.coalesce import Coalescer
from services.chassis.redirects import PERMANENT_REDIRECTS, Redirect, read_model_key

__all__ = ["NEGATIVE", "CachedLink", "LinkCache", "Lookup", "Ticket"]

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

# How long a change's tombstone fences the loads that began before it. A
# load that saw a tombstone is fenced by any change of the entry, whatever
# expires; one that saw nothing relies on the new tombstone still being
# there when it writes. A load lasts at most about 40 s (a pool checkout
# waits up to 30 s, a statement 5 s, a Redis call 0.25 s), so five minutes
# is a wide margin. (Eviction could remove a tombstone sooner, but
# allkeys-lfu starts a new key with the count of a few uses, so keys used
# less go first, such as codes scanned a minute ago: docs/redis.md.) It also
# bounds the tombstones' memory: one per change, for five minutes.
TOMBSTONE_SECONDS: Final = 300
_TOMBSTONE_PREFIX: Final = b"changed:"
# SET only if the entry holds what the load's lookup saw: ARGV[1] is that
# tombstone, or '' for nothing (a cached "" is a negative entry, never a
# ticket). Redis 8.4's SET ... IFEQ would do the tombstone case without a
# script; the deployments run Redis 7. The same write publishes the read
# model's entry (KEYS[2]: ARGV[4] for ARGV[5] s), or deletes it if ARGV[4]
# is '' (a link no gateway may answer): what the fence refuses, never.
_FILL_SCRIPT: Final = """
local held = redis.call('GET', KEYS[1])
if (ARGV[1] == '' and not held) or (ARGV[1] ~= '' and held == ARGV[1]) then
    redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
    if ARGV[4] == '' then
        redis.call('DEL', KEYS[2])
    else
        redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
    end
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

    def redirect(self, permanent_max_age: int) -> Redirect:
        """The answer to a visit; one whose visits are counted is kept by no
        browser and answered by no gateway."""
        cacheable = self.redirect_type in PERMANENT_REDIRECTS and not self.limited
        return Redirect(
            self.redirect_type,
            self.url,
            self.expires_at,
            permanent_max_age if cacheable else None,
            replayable=not self.limited and not self.exhausted,
        )


class _Negative:
    """The cached knowledge that a code does not exist."""


NEGATIVE: Final = _Negative()
_NEGATIVE_VALUE = b""


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a missed entry held when its load began (a tombstone, or None for
    nothing): the load's value is written only if it still holds that."""

    seen: bytes | None


# What a lookup finds: a link, a known-unknown code, a miss (with its
# ticket), or nothing at all (Redis unavailable).
Lookup = CachedLink | _Negative | Ticket | None


class LinkCache:
    def __init__(
        self,
        redis: Redis,
        breaker: Breaker,
        *,
        ttl_seconds: int,
        negative_ttl_seconds: int,
        permanent_max_age: int,
    ) -> None:
        self.redis = redis
        self.breaker = breaker
        self.ttl = ttl_seconds
        self.negative_ttl = negative_ttl_seconds
        self.permanent_max_age = permanent_max_age  # the redirects' Cache-Control cap
        self._fill = redis.register_script(_FILL_SCRIPT)
        # Every change and every stale entry found leaves a tombstone: the
        # ones made in one turn of the loop go to Redis in one pipeline.
        self._tombstones: Coalescer[tuple[str, bytes], object] = Coalescer(
            "cache_tombstones", self._set_tombstones
        )

    @staticmethod
    def key(code: str) -> str:
        # v2 added the "limited" flag: a v1 reader would have served limited
        # links from the cache without counting them. v3 added tombstones and
        # the "exhausted" flag: a v2 reader fails to decode either. v4: the
        # targets are the URL Standard's hrefs, and migration 0006 rewrote
        # the stored ones a v3 entry may still hold. The versions never
        # share entries.
        return f"link:v4:{code}"

    async def get(self, code: str) -> Lookup:
        """The cached link, NEGATIVE for a known-unknown code, a Ticket on a miss.

        None when Redis is unavailable: a miss whose load writes nothing.
        """
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
        return _lookup(raw)

    async def get_many(self, codes: list[str]) -> list[Lookup]:
        """``get`` for each code, in one round trip (MGET): a batch of visits."""
        try:
            with self.breaker.guard():
                raws = cast(
                    "list[bytes | None]", await self.redis.mget([self.key(c) for c in codes])
                )
        except BreakerOpen:
            _BYPASSED.inc(len(codes))
            return [None] * len(codes)
        except (RedisError, OSError) as exc:
            _ERR.inc(len(codes))
            log.warning("cache read failed", extra={"error": repr(exc)})
            return [None] * len(codes)
        return [_lookup(raw) for raw in raws]

    async def fill(self, code: str, entry: CachedLink | _Negative, ticket: Ticket) -> None:
        """Remember a load, unless the entry changed since ``ticket`` was taken.

        A link is kept the full TTL even past its expiry: a hit checks the
        expiry (resolver.py), so an expired link is refused by Redis alone;
        its read model entry, written with it, lives no longer than the link.
        """
        ttl = self.ttl if isinstance(entry, CachedLink) else self.negative_ttl
        published, published_for = b"", 0
        if isinstance(entry, CachedLink):
            redirect = entry.redirect(self.permanent_max_age)
            published_for = redirect.published_for(self.ttl, time.time())
            if published_for > 0:
                published = redirect.encode()
        seen = ticket.seen or b""
        args: list[bytes | int] = [seen, _encode(entry), ttl, published, published_for]
        keys = [self.key(code), read_model_key(code)]
        written = await self._write(lambda: self._fill(keys=keys, args=args))
        if written is not None:
            (_WRITTEN if written else _FENCED).inc()

    async def invalidate(self, code: str) -> None:
        """Forget a code after a change, so the next redirect sees the database's truth.

        The tombstone left in its place fences the loads in progress. Tried
        even while the breaker is open: changes are rare, and a missed
        invalidation would serve the old state until the entry's TTL.
        """
        try:
            await self._bury(code)
        except (RedisError, OSError) as exc:
            log.warning("cache invalidation failed", extra={"code": code, "error": repr(exc)})

    async def supersede(self, code: str) -> Ticket | None:
        """Invalidate an entry the caller found out of date; the ticket to fill it again.

        Through the breaker, unlike ``invalidate``: the visits that find an
        entry out of date can come by the thousand.
        """
        tombstone = await self._write(lambda: self._bury(code))
        return None if tombstone is None else Ticket(tombstone)

    async def _bury(self, code: str) -> bytes:
        tombstone = _TOMBSTONE_PREFIX + os.urandom(8).hex().encode()
        await self._tombstones((code, tombstone))
        return tombstone

    async def _set_tombstones(self, batch: list[tuple[str, bytes]]) -> list[object]:
        # The tombstone first: a fill between the two commands is fenced by
        # it, so it cannot publish the read model entry deleted next.
        pipe = self.redis.pipeline(transaction=False)
        for code, tombstone in batch:
            pipe.set(self.key(code), tombstone, ex=TOMBSTONE_SECONDS)
            pipe.delete(read_model_key(code))
        results: list[object] = await pipe.execute(raise_on_error=False)
        # One result per change: its deletion's error, else its tombstone's result.
        pairs = zip(results[::2], results[1::2], strict=True)
        return [deleted if isinstance(deleted, Exception) else set_ for set_, deleted in pairs]

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


def _lookup(raw: bytes | None) -> CachedLink | _Negative | Ticket:
    """What an entry's bytes say, counted."""
    if raw is None or raw.startswith(_TOMBSTONE_PREFIX):
        _MISS.inc()
        return Ticket(raw)
    if raw == _NEGATIVE_VALUE:
        _NEG.inc()
        return NEGATIVE
    _HIT.inc()
    return CachedLink(*orjson.loads(raw))  # the fields in _encode's order


def _encode(entry: CachedLink | _Negative) -> bytes:
    if not isinstance(entry, CachedLink):
        return _NEGATIVE_VALUE
    fields = [entry.url, entry.redirect_type, entry.expires_at, entry.limited, entry.exhausted]
    return orjson.dumps(fields)
