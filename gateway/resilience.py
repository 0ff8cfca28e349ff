"""What stands between the gateway and each upstream: a bulkhead, a breaker,
a timeout, and retries that cannot multiply an outage.

    request -> bulkhead (in-flight cap; full: 503 now) -> breaker (open: 503 now)
            -> send with the upstream's timeout
            -> connection failed and the method is idempotent and the budget allows?
               back off (exponential, full jitter) and try again

Retries are for failures where the request never reached the upstream
(connection refused or reset before a response) and the method is
idempotent. A timeout is not retried: a slow upstream is the case where a
retry doubles its load. The budget allows retries worth ``ratio`` of the
recent requests (plus a small floor so a quiet gateway can still retry), the
way Finagle and Envoy bound them; without it, every client request during an
outage would become three.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import httpx
from prometheus_client import Counter, Gauge

from gateway.config import GatewaySettings
from services.chassis.breaker import Breaker

__all__ = [
    "IDEMPOTENT",
    "UPSTREAM_FAILURES",
    "Backoff",
    "Bulkhead",
    "BulkheadFull",
    "RetryBudget",
    "UpstreamGuard",
    "build_guard",
]

log = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})  # RFC 9110 9.2.2

# What counts against an upstream's breaker: it could not be reached, broke
# the connection, broke HTTP or took too long. Nothing else does, above all
# nothing a client can choose: an answer is relayed as bytes and never
# interpreted inside the breaker (a Location a client stored, say), and a 4xx
# or 5xx answer is the upstream answering (docs/resilience.md, "What opens a
# breaker").
UPSTREAM_FAILURES: tuple[type[BaseException], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    TimeoutError,
)

IN_FLIGHT = Gauge("bulkhead_in_flight", "Requests in flight to an upstream.", ["bulkhead"])
REJECTIONS = Counter(
    "bulkhead_rejections_total", "Requests refused because the bulkhead was full.", ["bulkhead"]
)
RETRIES = Counter(
    "gateway_upstream_retries_total",
    "Retries to an upstream: made (retried) or refused by the retry budget (budget_exhausted).",
    ["upstream", "result"],
)
FAILURES = Counter(
    "gateway_upstream_failures_total",
    "Upstream calls that produced no upstream answer, by reason.",
    ["upstream", "reason"],
)
FAILURE_REASONS = ("timeout", "unavailable", "breaker_open", "bulkhead_full")


class BulkheadFull(Exception):
    """The upstream already has as many requests in flight as it may."""


class Bulkhead:
    """A cap on concurrent calls. Overflow fails at once instead of queueing:
    a queue in front of a stuck upstream only turns its slowness into ours."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.in_flight = 0
        self._gauge = IN_FLIGHT.labels(name)
        self._rejected = REJECTIONS.labels(name)

    def acquire(self) -> None:
        if self.in_flight >= self.limit:
            self._rejected.inc()
            raise BulkheadFull(self.name)
        self.in_flight += 1
        self._gauge.inc()

    def release(self) -> None:
        self.in_flight -= 1
        self._gauge.dec()


class RetryBudget:
    """Retries may be at most ``ratio`` of recent requests, plus ``min_retries``.

    "Recent" decays exponentially with ``window_seconds``: a count that
    forgets smoothly, with no window edge where the budget suddenly refills.
    ``min_retries`` lets a quiet gateway still retry a lone failure.
    """

    def __init__(
        self,
        ratio: float,
        min_retries: float,
        *,
        window_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self.min_retries = min_retries
        self.window = window_seconds
        self._clock = clock
        self._requests = 0.0
        self._retries = 0.0
        self._last = clock()

    def _decay(self) -> None:
        now = self._clock()
        factor = math.exp(-(now - self._last) / self.window)
        self._last = now
        self._requests *= factor
        self._retries *= factor

    def record_request(self) -> None:
        self._decay()
        self._requests += 1

    def try_spend(self) -> bool:
        """Take one retry from the budget, if it has one."""
        self._decay()
        # The epsilon forgives what floating-point decay never quite forgets.
        if self._retries + 1 > self.ratio * self._requests + self.min_retries + 1e-9:
            return False
        self._retries += 1
        return True


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog, 2015)."""

    base_seconds: float
    cap_seconds: float

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The pause before retry number ``attempt`` (1-based)."""
        ceiling: float = min(self.cap_seconds, self.base_seconds * 2.0 ** (attempt - 1))
        return rand() * ceiling


@dataclass(slots=True)
class UpstreamGuard:
    """The resilience settings and state of one upstream."""

    name: str
    # httpx's per-request timeout extension (read: the wait for an answer).
    timeouts: dict[str, float]
    bulkhead: Bulkhead
    breaker: Breaker
    budget: RetryBudget
    backoff: Backoff
    max_retries: int

    def __post_init__(self) -> None:
        for reason in FAILURE_REASONS:
            FAILURES.labels(self.name, reason)
        for result in ("retried", "budget_exhausted"):
            RETRIES.labels(self.name, result)

    def may_retry(self, method: str, attempt: int) -> bool:
        """Whether a failed attempt (``attempt`` retries so far) may be tried again."""
        if method not in IDEMPOTENT or attempt >= self.max_retries:
            return False
        if not self.budget.try_spend():
            RETRIES.labels(self.name, "budget_exhausted").inc()
            return False
        RETRIES.labels(self.name, "retried").inc()
        return True

    def failed(self, reason: str) -> None:
        FAILURES.labels(self.name, reason).inc()

    async def retried(self, method: str, attempt: int) -> bool:
        """After a failed connection: whether to try again, having paused first."""
        if not self.may_retry(method, attempt):
            return False
        await asyncio.sleep(self.backoff.delay(attempt + 1))
        return True

    def timed_out(self) -> None:
        self.failed("timeout")
        log.warning("upstream timed out", extra={"upstream": self.name})

    def unreachable(self, exc: BaseException) -> None:
        self.failed("unavailable")
        log.warning("upstream unreachable", extra={"upstream": self.name, "error": repr(exc)})


def build_guard(name: str, settings: GatewaySettings) -> UpstreamGuard:
    """The guard of upstream ``name`` from the ``GATEWAY_<NAME>_*`` and shared settings."""
    timeout: float = getattr(settings, f"{name}_timeout_seconds")
    connect = settings.upstream_connect_timeout_seconds
    return UpstreamGuard(
        name=name,
        timeouts={"connect": connect, "read": timeout, "write": timeout, "pool": connect},
        bulkhead=Bulkhead(name, getattr(settings, f"{name}_max_in_flight")),
        breaker=Breaker(
            name,
            fail_max=settings.breaker_fail_max,
            reset_timeout=settings.breaker_reset_seconds,
            failures=UPSTREAM_FAILURES,
        ),
        budget=RetryBudget(settings.retry_budget_ratio, settings.retry_budget_min),
        backoff=Backoff(settings.retry_backoff_base_seconds, settings.retry_backoff_cap_seconds),
        max_retries=settings.retry_max,
    )
