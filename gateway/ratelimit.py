"""Rate limits at the edge, counted in Redis so every gateway replica agrees.

Each request falls under one policy (``policy_for``): redirects, link
creation, login/registration, or the rest of the API. Every policy counts
with a sliding window counter (gateway/windows.py, no burst at window
edges); redirects are counted here and shared with the other replicas in
batches (no Redis round trip on the hot path, a bounded overshoot with
several replicas), the others with one atomic script run per request
(exact; concurrent checks share a round trip). Every answer under a policy
carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``
(seconds), and a 429 adds ``Retry-After``. Limits are written in the ``limits`` library's notation.

When Redis is down each policy does what it was chosen to do (``fail_open``):
the API keeps flowing unlimited and redirects are limited by each replica's
own count (an outage of a cache must not become an outage of the product),
while login and registration are refused with 503 (unlimited password
guessing is worse than a short login outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from limits import RateLimitItem, parse
from prometheus_client import Counter
from redis.exceptions import RedisError

from gateway.config import GatewaySettings
from gateway.windows import BatchedWindows, ExactWindows, position
from services.chassis.breaker import BreakerOpen, redis_breaker
from services.chassis.redis import create_redis

__all__ = ["Decision", "Policy", "RateLimiter", "policy_for"]

log = logging.getLogger(__name__)
DECISIONS = Counter(
    "gateway_ratelimit_decisions_total", "Rate-limit decisions by policy.", ["policy", "decision"]
)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    limit: RateLimitItem
    anonymous_limit: RateLimitItem
    fail_open: bool
    # Counted here and synchronised in batches, rather than exactly per request.
    batched: bool = False


class Decision(NamedTuple):
    allowed: bool
    headers: list[tuple[bytes, bytes]]
    # Redis was away and the policy said "closed".
    unavailable: bool = False


def build_policies(settings: GatewaySettings) -> dict[str, Policy]:
    return {
        "redirect": Policy(
            "redirect",
            parse(settings.ratelimit_redirect),
            parse(settings.ratelimit_redirect),
            fail_open=True,
            batched=True,
        ),
        "create": Policy(
            "create",
            parse(settings.ratelimit_create),
            parse(settings.ratelimit_create_anonymous),
            True,
        ),
        "auth": Policy(
            "auth", parse(settings.ratelimit_auth), parse(settings.ratelimit_auth), False
        ),
        "api": Policy("api", parse(settings.ratelimit_api), parse(settings.ratelimit_api), True),
    }


def policy_for(method: str, path: str, upstream: str) -> str:
    """Which policy a request counts against."""
    if upstream == "link" and method == "GET" and path.count("/") == 1:
        return "redirect"
    if method == "POST" and path == "/api/v1/links":
        return "create"
    if method == "POST" and path in ("/api/v1/auth/login", "/api/v1/auth/register"):
        return "auth"
    return "api"


class RateLimiter:
    def __init__(self, settings: GatewaySettings, clock: Callable[[], float] = time.time) -> None:
        # Wall-clock time: every replica must agree on where a window starts.
        self._clock = clock
        self.redis = create_redis(settings)
        self.exact = ExactWindows(self.redis)
        self.batched = BatchedWindows(self.redis, clock)
        self.policies = build_policies(settings)
        self.sync_seconds = settings.ratelimit_sync_seconds
        # A hung Redis would cost every request a timeout: after a few
        # failures the policies' fail-open/closed answer is given at once.
        self.breaker = redis_breaker(settings)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._sync_forever(), name="ratelimit-sync")

    async def stop(self) -> None:
        """Stop synchronising, after sending the last hits counted here."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.sync()
        await self.redis.aclose()

    async def reachable(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except RedisError:
            return False

    async def sync(self) -> None:
        """Share the batched counts with Redis once; a failure waits for the next."""
        try:
            with self.breaker.guard():
                await self.batched.sync()
        except (BreakerOpen, RedisError) as exc:
            DECISIONS.labels("redirect", "sync_failed").inc()
            log.debug("rate-limit sync failed", extra={"error": repr(exc)})

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sync_seconds)
            await self.sync()

    async def check(self, policy_name: str, key: str, anonymous: bool) -> Decision:
        policy = self.policies[policy_name]
        # Anonymous callers are counted per address, identified ones per user or key.
        item = policy.anonymous_limit if anonymous else policy.limit
        at = position(self._clock(), item.get_expiry())
        name = f"{policy.name}:{key}"
        if policy.batched:
            allowed, used = self.batched.hit(name, item.amount, at)
        else:
            try:
                with self.breaker.guard():
                    allowed, used = await self.exact.hit(name, item.amount, at)
            except BreakerOpen:
                DECISIONS.labels(policy.name, "bypassed").inc()
                return Decision(policy.fail_open, [], unavailable=not policy.fail_open)
            except RedisError as exc:
                DECISIONS.labels(policy.name, "error").inc()
                log.warning(
                    "rate limiter unavailable", extra={"policy": policy.name, "error": repr(exc)}
                )
                return Decision(policy.fail_open, [], unavailable=not policy.fail_open)
        reset = max(0, math.ceil(at.reset))
        headers = [
            *_static_headers(item),
            (b"ratelimit-remaining", str(max(0, item.amount - used)).encode()),
            (b"ratelimit-reset", str(reset).encode()),
        ]
        if not allowed:
            headers.append((b"retry-after", str(max(1, reset)).encode()))
        _counted(policy.name, "allowed" if allowed else "limited").inc()
        return Decision(allowed, headers)


# Cached: per request, prometheus_client's label lookup was 5% of a cached
# redirect's CPU, and these headers never change for a limit.
@functools.cache
def _counted(policy: str, decision: str) -> Counter:
    return DECISIONS.labels(policy, decision)


@functools.cache
def _static_headers(item: RateLimitItem) -> tuple[tuple[bytes, bytes], ...]:
    return (
        (b"ratelimit-limit", str(item.amount).encode()),
        (b"ratelimit-policy", f"{item.amount};w={item.get_expiry()}".encode()),
    )
