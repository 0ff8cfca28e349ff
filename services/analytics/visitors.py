"""Unique visitors per link per UTC day, as Redis HyperLogLogs.

One HLL per link per day (``uv:{code}:{yyyy-mm-dd}``) holds the visitors'
keyed IP hashes (never addresses) in at most 12 KiB, whatever the traffic;
its count has a standard error of 0.81%. A range's figure is the *sum* of
its days' counts: a visitor who came on two days counts twice. (``PFCOUNT``
of several keys would count the union instead, but merges every key's
registers on each request, work that grows with the range.)

Best effort by design: Redis being away costs the unique-visitor figure
(counted in ``analytics_unique_visitors_skipped_total``, and ``null`` in
stats), never a click. Adding a visitor twice changes nothing, so a batch
that is retried or delivered again can add its visitors again safely.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.analytics.metrics import VISITORS_SKIPPED
from services.analytics.rollup import ClassifiedClick
from services.chassis.outage import Outage

__all__ = ["UniqueVisitors"]

log = logging.getLogger(__name__)
# After a failure, batches skip Redis for this long instead of each waiting
# for a connection timeout.
_PAUSE_AFTER_FAILURE = 5.0


def _key(code: str, day: date) -> str:
    return f"uv:{code}:{day.isoformat()}"


class UniqueVisitors:
    def __init__(self, redis: Redis, *, retention_days: int) -> None:
        self.redis = redis
        self.retention = timedelta(days=retention_days)
        self._outage = Outage(log, "unique visitors (redis)")
        self._paused_until = 0.0

    async def add(self, clicks: Iterable[ClassifiedClick]) -> None:
        """Record the visitors of human clicks; gives up quietly when Redis is away."""
        visitors: defaultdict[tuple[str, date], set[str]] = defaultdict(set)
        for click in clicks:
            if click.ip_hash and not click.agent.bot:
                visitors[click.code, click.day].add(click.ip_hash)
        if not visitors:
            return
        if time.monotonic() < self._paused_until:
            VISITORS_SKIPPED.inc(sum(map(len, visitors.values())))
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for (code, day), ids in visitors.items():
                    key = _key(code, day)
                    pipe.pfadd(key, *ids)
                    # A fixed end, counted from the day, not from the last write.
                    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
                    pipe.expireat(key, midnight + self.retention)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._paused_until = time.monotonic() + _PAUSE_AFTER_FAILURE
            VISITORS_SKIPPED.inc(sum(map(len, visitors.values())))
            self._outage.failed(exc)
        else:
            self._outage.recovered()

    async def count(self, code: str, days: Sequence[date]) -> int | None:
        """The sum of each day's unique visitors, or None when Redis cannot say."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for day in days:
                    pipe.pfcount(_key(code, day))
                counts = await pipe.execute()
        except (RedisError, OSError):
            return None
        return sum(int(count) for count in counts)
