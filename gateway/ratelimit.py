"""Rate limits at the edge, counted in Redis so every gateway replica agrees.

Each request falls under one policy (``policy_for``): redirects, link
creation, login/registration, or the rest of the API. The counter is the
``limits`` library's sliding window counter (atomic in Redis, O(1) memory per
key, no burst at window edges). Every answer under a policy carries
``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``
(seconds), and a 429 adds ``Retry-After``.

When Redis is down each policy does what it was chosen to do (``fail_open``):
redirects and the API keep flowing unlimited (an outage of a cache must not
become an outage of the product), while login and registration are refused
with 503 (unlimited password guessing is worse than a short login outage).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from prometheus_client import Counter

from gateway.config import GatewaySettings
from services.chassis.breaker import BreakerOpen, redis_breaker

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


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    headers: list[tuple[bytes, bytes]]
    # Redis was away and the policy said "closed".
    unavailable: bool = False


def build_policies(settings: GatewaySettings) -> dict[str, Policy]:
    return {
        "redirect": Policy(
            "redirect", parse(settings.ratelimit_redirect), parse(settings.ratelimit_redirect), True
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
    def __init__(self, settings: GatewaySettings) -> None:
        timeout = settings.redis_timeout_seconds
        self.storage = RedisStorage(
            "async+" + settings.redis_url,
            implementation="redispy",
            wrap_exceptions=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)
        self.policies = build_policies(settings)
        # A hung Redis would cost every request a timeout: after a few
        # failures the policies' fail-open/closed answer is given at once.
        self.breaker = redis_breaker(settings)

    async def check(self, policy_name: str, key: str, anonymous: bool) -> Decision:
        policy = self.policies[policy_name]
        # Anonymous callers are counted per address, identified ones per user or key.
        item = policy.anonymous_limit if anonymous else policy.limit
        try:
            with self.breaker.guard():
                allowed = await self.limiter.hit(item, policy.name, key)
                stats = await self.limiter.get_window_stats(item, policy.name, key)
        except BreakerOpen:
            DECISIONS.labels(policy.name, "bypassed").inc()
            return Decision(policy.fail_open, [], unavailable=not policy.fail_open)
        except StorageError as exc:
            DECISIONS.labels(policy.name, "error").inc()
            log.warning(
                "rate limiter unavailable", extra={"policy": policy.name, "error": repr(exc)}
            )
            return Decision(policy.fail_open, [], unavailable=not policy.fail_open)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        headers = [
            (b"ratelimit-limit", str(item.amount).encode()),
            (b"ratelimit-remaining", str(stats.remaining).encode()),
            (b"ratelimit-reset", str(reset).encode()),
            (b"ratelimit-policy", f"{item.amount};w={item.get_expiry()}".encode()),
        ]
        if not allowed:
            headers.append((b"retry-after", str(max(1, reset)).encode()))
        DECISIONS.labels(policy.name, "allowed" if allowed else "limited").inc()
        return Decision(allowed, headers)
