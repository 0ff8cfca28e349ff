"""Sliding window counters in Redis: exact (one script run per request, the
runs of concurrent requests sent together) or batched (counted here, shared
through Redis every few milliseconds).

Both count the same way, in the same keys: a counter per fixed window
(``rl:{policy:key}:<window index>``), and the sliding window's count is the
current window's plus the previous one's weighted by how much of it still
overlaps (the ``limits`` library's sliding window counter, Cloudflare's
"approximating sliding windows"). The braces are a Redis Cluster hash tag:
both windows of one key live on one shard, so one script can read them.

**Exact** (``ExactWindows``): a Lua script reads both windows, decides and
increments atomically: never more than the limit, whatever the number of
gateway replicas. The checks that arrive together share one round trip.

**Batched** (``BatchedWindows``): no round trip on the request. Each replica
decides from what Redis said at its last synchronisation plus its own hits
since; every ``interval`` one pipeline sends the hits of all keys (INCRBY)
and reads back the totals. A replica never exceeds the limit by itself; what
it cannot see is the hits other replicas admitted since their last
synchronisation. So with R replicas, a key is admitted at most
``limit + (R - 1) x (hits one replica admits for it in one interval and one
round trip)`` times a window; with one replica, exactly ``limit``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from services.chassis.coalesce import Coalescer

__all__ = ["BatchedWindows", "ExactWindows", "Position", "position"]


# KEYS: this window, the previous one. ARGV: limit, weight of the previous
# window, expiry of a window's counter (two windows, in seconds).
_HIT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local used = math.floor(previous * tonumber(ARGV[2]) + current)
if used >= tonumber(ARGV[1]) then
    return {0, used}
end
if redis.call('INCR', KEYS[1]) == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return {1, used + 1}
"""


@dataclass(slots=True)
class Position:
    """Where ``now`` falls among windows of ``seconds``."""

    seconds: int
    index: int  # of the current window since the epoch
    weight: float  # share of the previous window still inside the sliding one
    reset: float  # seconds until the current window ends


def position(now: float, seconds: int) -> Position:
    index = int(now // seconds)
    elapsed = now - index * seconds
    return Position(seconds, index, (seconds - elapsed) / seconds, seconds - elapsed)


def _key(name: str, index: int) -> str:
    return f"rl:{{{name}}}:{index}"


def _used(previous: int, current: int, at: Position) -> int:
    return math.floor(previous * at.weight + current)


class ExactWindows:
    """Checks that arrive together leave together: on the next turn of the
    event loop, one pipeline of script calls (one round trip, one pass
    through redis-py) rather than one call each (services/chassis/coalesce.py,
    ADR 0017). A lone check is sent by itself, at once. Each call is still
    one atomic script run in Redis: exactness does not depend on the batching."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._hit = redis.register_script(_HIT)
        self._checks: Coalescer[_Check, Any] = Coalescer("ratelimit_checks", self._run)

    async def hit(self, name: str, limit: int, at: Position) -> tuple[bool, int]:
        """Count one request against ``name`` if allowed; (allowed, count in the window)."""
        keys = [_key(name, at.index), _key(name, at.index - 1)]
        allowed, used = await self._checks(_Check(keys, [limit, at.weight, 2 * at.seconds]))
        return bool(allowed), int(used)

    async def _run(self, batch: list[_Check]) -> list[Any]:
        if len(batch) == 1:  # the script object loads the script if Redis lost it
            return [await self._hit(keys=batch[0].keys, args=batch[0].args)]
        results = await self._pipeline(batch)
        if any(isinstance(r, NoScriptError) for r in results):  # Redis restarted or flushed
            await self._redis.script_load(_HIT)
            results = await self._pipeline(batch)
        return results

    async def _pipeline(self, batch: list[_Check]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for check in batch:
            pipe.evalsha(self._hit.sha, len(check.keys), *check.keys, *check.args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        return results


class _Check(NamedTuple):
    keys: list[str]
    args: list[Any]


@dataclass(slots=True)
class _Seen:
    """What Redis said of a key at the last synchronisation."""

    index: int
    seconds: int
    current: int
    previous: int


class BatchedWindows:
    def __init__(self, redis: Redis, clock: Callable[[], float]) -> None:
        self._redis = redis
        self._clock = clock
        # (name, window index) -> [hits not yet in Redis, window seconds]
        self._pending: dict[tuple[str, int], list[int]] = {}
        self._sending: dict[tuple[str, int], list[int]] = {}
        self._seen: dict[str, _Seen] = {}

    def __len__(self) -> int:
        """Keys held in memory (bounded by the keys active in the last two windows)."""
        return len(self._seen.keys() | {name for name, _ in self._pending})

    def hit(self, name: str, limit: int, at: Position) -> tuple[bool, int]:
        """Count one request against ``name`` if allowed; (allowed, count in the window)."""
        current, previous = 0, 0
        seen = self._seen.get(name)
        if seen is not None and seen.index == at.index:
            current, previous = seen.current, seen.previous
        elif seen is not None and seen.index == at.index - 1:
            previous = seen.current
        current += self._unsent(name, at.index)
        previous += self._unsent(name, at.index - 1)
        used = _used(previous, current, at)
        if used >= limit:
            return False, used
        self._pending.setdefault((name, at.index), [0, at.seconds])[0] += 1
        return True, used + 1

    def _unsent(self, name: str, index: int) -> int:
        pending = self._pending.get((name, index))
        sending = self._sending.get((name, index))
        return (pending[0] if pending else 0) + (sending[0] if sending else 0)

    async def sync(self) -> None:
        """Send the hits counted here since the last call; learn everyone's totals.

        On failure the hits stay to be sent next time, and the error is raised.
        """
        self._forget_old()
        self._sending, self._pending = self._pending, {}
        if not self._sending:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for (name, index), (hits, seconds) in self._sending.items():
                pipe.incrby(_key(name, index), hits)
                pipe.expire(_key(name, index), 2 * seconds)
                pipe.get(_key(name, index - 1))
            results: list[Any] = await pipe.execute()
        except BaseException:
            for window, (hits, seconds) in self._sending.items():
                self._pending.setdefault(window, [0, seconds])[0] += hits
            raise
        finally:
            sent, self._sending = self._sending, {}
        for offset, ((name, index), (_, seconds)) in enumerate(sent.items()):
            total, _, previous = results[3 * offset : 3 * offset + 3]
            seen = self._seen.get(name)
            if seen is None or seen.index <= index:
                self._seen[name] = _Seen(index, seconds, int(total), int(previous or 0))

    def _forget_old(self) -> None:
        """Drop what no decision can use any more: windows before the previous one."""
        now = self._clock()
        for window in [w for w, (_, s) in self._pending.items() if w[1] < now // s - 1]:
            del self._pending[window]
        for name in [n for n, e in self._seen.items() if e.index < now // e.seconds - 1]:
            del self._seen[name]
