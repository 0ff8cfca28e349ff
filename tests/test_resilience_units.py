"""The resilience parts on their own: breaker wiring, bulkhead, retry budget,
backoff and the stale cache, driven by a fake clock (no sleeping)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from gateway.resilience import Backoff, Bulkhead, BulkheadFull, RetryBudget
from gateway.stale import StaleRedirects
from services.chassis.breaker import Breaker, BreakerOpen


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Boom(Exception):
    pass


def fail(breaker: Breaker) -> None:
    with pytest.raises(Boom), breaker.guard():
        raise Boom


def succeed(breaker: Breaker) -> None:
    with breaker.guard():
        pass


def test_breaker_opens_after_consecutive_failures_and_refuses_without_calling() -> None:
    clock = FakeClock()
    breaker = Breaker("unit-open", fail_max=3, reset_timeout=5, clock=clock)
    fail(breaker)
    fail(breaker)
    succeed(breaker)  # a success resets the count: failures must be consecutive
    fail(breaker)
    fail(breaker)
    assert breaker.state == "closed"
    fail(breaker)
    assert breaker.state == "open"
    ran = False
    with pytest.raises(BreakerOpen) as refused, breaker.guard():
        ran = True
    assert not ran
    assert refused.value.retry_after == pytest.approx(5)
    clock.advance(2)
    assert breaker.retry_after() == pytest.approx(3)


def test_breaker_lets_one_trial_through_after_the_reset_timeout() -> None:
    clock = FakeClock()
    breaker = Breaker("unit-trial", fail_max=1, reset_timeout=5, clock=clock)
    fail(breaker)
    clock.advance(4.9)
    with pytest.raises(BreakerOpen), breaker.guard():
        pass
    clock.advance(0.2)
    with breaker.guard():
        assert breaker.state == "half-open"
        # While the trial runs, everybody else is still refused.
        with pytest.raises(BreakerOpen), breaker.guard():
            pass
    assert breaker.state == "closed"


def test_a_failed_trial_opens_the_breaker_for_another_full_timeout() -> None:
    clock = FakeClock()
    breaker = Breaker("unit-retrip", fail_max=1, reset_timeout=5, clock=clock)
    fail(breaker)
    clock.advance(5)
    fail(breaker)  # the trial
    assert breaker.state == "open"
    clock.advance(4)
    with pytest.raises(BreakerOpen), breaker.guard():
        pass
    clock.advance(1)
    succeed(breaker)
    assert breaker.state == "closed"


def test_breaker_transitions_are_counted_and_shown() -> None:
    clock = FakeClock()
    breaker = Breaker("unit-metrics", fail_max=1, reset_timeout=1, clock=clock)
    fail(breaker)
    sample = REGISTRY.get_sample_value
    assert sample("circuit_breaker_state", {"breaker": "unit-metrics"}) == 1
    clock.advance(1)
    succeed(breaker)
    assert sample("circuit_breaker_state", {"breaker": "unit-metrics"}) == 0
    for state in ("open", "half-open", "closed"):
        labels = {"breaker": "unit-metrics", "state": state}
        assert sample("circuit_breaker_transitions_total", labels) == 1


async def test_a_cancelled_call_is_not_a_failure() -> None:
    breaker = Breaker("unit-cancel", fail_max=1, reset_timeout=5, clock=FakeClock())

    async def hang() -> None:
        with breaker.guard():
            await asyncio.sleep(10)

    task = asyncio.create_task(hang())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state == "closed"


def test_only_the_listed_failures_count_against_the_dependency() -> None:
    breaker = Breaker(
        "unit-failures", fail_max=1, reset_timeout=5, clock=FakeClock(), failures=(OSError,)
    )
    for _ in range(3):  # not the dependency's fault: a bug, or a client's input
        with pytest.raises(ValueError, match="no parser"), breaker.guard():
            raise ValueError("a Location no parser accepts")
    assert breaker.state == "closed"
    with pytest.raises(ConnectionRefusedError), breaker.guard():
        raise ConnectionRefusedError
    assert breaker.state == "open"


def test_bulkhead_refuses_at_once_when_full_and_frees_slots() -> None:
    bulkhead = Bulkhead("unit", limit=2)
    bulkhead.acquire()
    bulkhead.acquire()
    with pytest.raises(BulkheadFull):
        bulkhead.acquire()
    bulkhead.release()
    bulkhead.acquire()
    assert bulkhead.in_flight == 2


def test_retry_budget_is_a_fraction_of_recent_requests() -> None:
    clock = FakeClock()
    budget = RetryBudget(0.1, min_retries=2, window_seconds=10, clock=clock)
    for _ in range(100):
        budget.record_request()
    granted = sum(budget.try_spend() for _ in range(50))
    assert granted == 12  # 10% of 100, plus the floor of 2
    # Recent requests and retries decay together: minutes later, the
    # budget is back to the floor, not to minutes of savings.
    clock.advance(300)
    granted = sum(budget.try_spend() for _ in range(50))
    assert granted == 2


def test_retry_budget_floor_lets_a_quiet_gateway_retry() -> None:
    budget = RetryBudget(0.1, min_retries=1, clock=FakeClock())
    budget.record_request()
    assert budget.try_spend()
    assert not budget.try_spend()


def test_backoff_is_exponential_with_full_jitter_and_a_cap() -> None:
    backoff = Backoff(base_seconds=0.025, cap_seconds=0.25)
    assert [backoff.delay(n, rand=lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [
        0.025,
        0.05,
        0.1,
        0.2,
        0.25,
    ]
    assert backoff.delay(3, rand=lambda: 0.5) == 0.05


def test_stale_cache_replays_only_what_the_link_service_allowed() -> None:
    clock = FakeClock()
    stale = StaleRedirects(max_entries=10, max_age_seconds=300, clock=clock)
    stale.remember("forever", 302, b"https://a.example/", b"86400")
    stale.remember("soon", 302, b"https://b.example/", b"30")
    stale.remember("never", 302, b"https://c.example/", None)
    assert stale.get("never") is None
    entry = stale.get("forever")
    assert entry is not None
    assert (entry.status, entry.location) == (302, b"https://a.example/")
    clock.advance(31)
    assert stale.get("soon") is None  # the link expired: never replayed after
    clock.advance(270)
    assert stale.get("forever") is None  # older than the gateway's max age


def test_stale_cache_forgets_a_link_that_stopped_being_replayable() -> None:
    stale = StaleRedirects(max_entries=10, max_age_seconds=300, clock=FakeClock())
    stale.remember("code", 302, b"https://a.example/", b"600")
    stale.remember("code", 302, b"https://a.example/", None)
    assert stale.get("code") is None
    stale.remember("gone", 302, b"https://a.example/", b"600")
    stale.forget("gone")
    assert stale.get("gone") is None


def test_stale_cache_is_bounded_least_recently_used_first_out() -> None:
    stale = StaleRedirects(max_entries=2, max_age_seconds=300, clock=FakeClock())
    stale.remember("a", 302, b"https://a.example/", b"600")
    stale.remember("b", 302, b"https://b.example/", b"600")
    stale.remember("a", 302, b"https://a.example/", b"600")  # a is fresh again
    stale.remember("c", 302, b"https://c.example/", b"600")
    assert len(stale) == 2
    assert stale.get("b") is None
    assert stale.get("a") is not None
    assert stale.get("c") is not None
