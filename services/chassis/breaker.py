"""Circuit breakers: pybreaker's state machine, adapted to asyncio.

    closed --(fail_max consecutive failures)--> open
    open --(reset_timeout elapsed)--> half_open: ONE trial call goes through
    half_open --(trial succeeds)--> closed    half_open --(trial fails)--> open

pybreaker is synchronous; its ``calling()`` context manager runs the state
checks on entry and the bookkeeping on exit, and nothing in between holds
its lock, so an ``await`` inside the block is safe on one event loop. Two
things are added here:

- **one trial at a time**: pybreaker lets every call through while half-open;
  with hundreds of concurrent requests that is a stampede on a service that
  is just coming back. Calls that arrive while the trial runs are refused.
- **a monotonic clock**: pybreaker compares wall-clock datetimes, so a clock
  step would stretch or cut the open state; the open instant is measured on
  an injectable monotonic clock instead (and a test can pass a fake one).

Every transition is counted (``circuit_breaker_transitions_total``), shown
as a gauge (``circuit_breaker_state``: 0 closed, 1 open, 2 half-open),
logged, and added as an event to the span of the request that caused it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pybreaker
from opentelemetry import trace
from prometheus_client import Counter, Gauge

from services.chassis.config import RedisSettings

__all__ = ["STATE_VALUES", "Breaker", "BreakerOpen", "redis_breaker"]

log = logging.getLogger(__name__)

STATE_VALUES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_OPEN: 1, pybreaker.STATE_HALF_OPEN: 2}
BREAKER_STATE = Gauge(
    "circuit_breaker_state", "Breaker state: 0 closed, 1 open, 2 half-open.", ["breaker"]
)
TRANSITIONS = Counter(
    "circuit_breaker_transitions_total",
    "Breaker state changes, by new state.",
    ["breaker", "state"],
)


class BreakerOpen(Exception):
    """The call was not attempted: the breaker is open (or its trial is running)."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"circuit breaker {name!r} is open")
        self.retry_after = retry_after


class _MonotonicStorage(pybreaker.CircuitMemoryStorage):
    """Keeps the open instant on a monotonic clock; reports it as pybreaker expects."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(pybreaker.STATE_CLOSED)
        self._clock = clock
        self._opened_mono: float | None = None

    @property
    def opened_at(self) -> datetime | None:
        if self._opened_mono is None:
            return None
        # The wall-clock instant that lies as far in the past as the opening
        # does on the monotonic clock: pybreaker's comparison then agrees.
        return datetime.now(UTC) - timedelta(seconds=self._clock() - self._opened_mono)

    @opened_at.setter
    def opened_at(self, _: datetime) -> None:
        self._opened_mono = self._clock()

    def seconds_open(self) -> float:
        return 0.0 if self._opened_mono is None else self._clock() - self._opened_mono


class _Listener(pybreaker.CircuitBreakerListener):
    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        name = cb.name or "unnamed"
        BREAKER_STATE.labels(name).set(STATE_VALUES[new_state.name])
        TRANSITIONS.labels(name, new_state.name).inc()
        before = old_state.name if old_state is not None else None
        log.warning(
            "circuit breaker %s: %s -> %s",
            name,
            before,
            new_state.name,
            extra={"breaker": name, "from_state": before, "to_state": new_state.name},
        )
        trace.get_current_span().add_event(
            "circuit_breaker.state_change",
            {"breaker": name, "from": before or "", "to": new_state.name},
        )


def _is_cancellation(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError)


class Breaker:
    """One breaker around one dependency; ``with breaker.guard(): await call()``."""

    def __init__(
        self,
        name: str,
        *,
        fail_max: int,
        reset_timeout: float,
        clock: Callable[[], float] = time.monotonic,
        failures: tuple[type[BaseException], ...] = (Exception,),
    ) -> None:
        """``failures``: the exceptions that count against the dependency.

        Anything else leaving a guarded block is not its fault (our own bug,
        or something a client sent) and counts as a success: otherwise one
        client could open the breaker for every client (docs/resilience.md).
        """
        self.name = name
        self.reset_timeout = reset_timeout

        def not_theirs(exc: BaseException) -> bool:
            return not isinstance(exc, failures)

        self._storage = _MonotonicStorage(clock)
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            state_storage=self._storage,
            listeners=[_Listener()],
            name=name,
            # A client that hangs up is not the dependency failing; nor is
            # anything outside ``failures``.
            exclude=[_is_cancellation, not_theirs],
            throw_new_error_on_trip=False,  # the caller sees the real failure
        )
        self._trial_running = False
        BREAKER_STATE.labels(name).set(0)
        for state in STATE_VALUES:
            TRANSITIONS.labels(name, state)  # present at zero before the first change

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open`` (pybreaker's names)."""
        return str(self._breaker.current_state)

    def retry_after(self) -> float:
        """Seconds until the breaker will let a trial through (0 when closed)."""
        if self.state != pybreaker.STATE_OPEN:
            return 0.0
        return max(0.0, self.reset_timeout - self._storage.seconds_open())

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run the block as a call through the breaker.

        Raises BreakerOpen without running the block when the breaker is
        open. An exception leaving the block is a failure, unless the caller
        has marked it as the dependency's "answer" by catching it inside.
        """
        if self.state == pybreaker.STATE_HALF_OPEN and self._trial_running:
            raise BreakerOpen(self.name, self.reset_timeout)
        try:
            calling: Any = self._breaker.calling()
            calling.__enter__()
        except pybreaker.CircuitBreakerError:
            self._annotate_refusal()
            raise BreakerOpen(self.name, self.retry_after()) from None
        trial = self.state == pybreaker.STATE_HALF_OPEN
        self._trial_running = self._trial_running or trial
        try:
            yield
        except BaseException as exc:
            calling.__exit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            calling.__exit__(None, None, None)
        finally:
            if trial:
                self._trial_running = False

    def _annotate_refusal(self) -> None:
        trace.get_current_span().add_event("circuit_breaker.rejected", {"breaker": self.name})


def redis_breaker(settings: RedisSettings) -> Breaker:
    """The breaker a process puts around its Redis calls."""
    return Breaker(
        "redis",
        fail_max=settings.redis_breaker_fail_max,
        reset_timeout=settings.redis_breaker_reset_seconds,
    )
