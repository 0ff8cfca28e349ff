"""Running one experiment: seed, steady state, fault, recovery, judgement.

    seed links -> traffic on -> steady state holds? -> fault (t0)
      -> fault removed (t1: SIGCONT, or the killed piece back) -> steady again (RTO)
      -> traffic off -> wait for analytics to count every redirect (RPO)

RTO is measured from the fault's removal, or for a kill from the kill
itself (the restart is part of recovering), to the first moment from which
the gateway is ready, all its breakers closed and a full second of redirects
answered fresh (not from the stale cache). RPO is the clicks lost: redirects
returned minus clicks counted once the pipeline has caught up.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import httpx

from chaos.experiments import Experiment
from chaos.latency import Latency
from chaos.probes import (
    Context,
    all_hold,
    breaker_state,
    counted_clicks,
    open_breakers,
    wait_for,
)
from chaos.target import Target, ready
from chaos.traffic import Traffic, WindowStats
from loadtests.accounts import create_link

__all__ = ["Outcome", "run_experiment"]

STEADY_SECONDS = 3.0
AFTER_SECONDS = 2.0
CLICKS_TIMEOUT = 90.0
CLICKS_SETTLED = 20.0


@dataclass
class Outcome:
    experiment: Experiment
    observed: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    rto_seconds: float | None = None
    clicks_expected: int = 0
    clicks_counted: int = 0

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def rpo_events(self) -> int:
        return max(0, self.clicks_expected - self.clicks_counted)

    def fail(self, what: str) -> None:
        self.failures.append(what)


def seed(context: Context, count: int) -> tuple[Context, list[str]]:
    """Fresh links for one experiment, known to analytics before it starts,
    and a fresh login (the token a fault's probe uses must not expire)."""
    with httpx.Client(base_url=context.gateway, timeout=10) as http:
        codes = [
            create_link(http, context.account, f"https://example.com/chaos/{n}")
            for n in range(count)
        ]
        token = _login(http, context)
    context = replace(context, access_token=token)
    for code in codes:  # stats answer once analytics has seen the link's event
        if wait_for(_known(context, code), 30) is None:
            raise RuntimeError(f"analytics never learned link {code}")
    return context, codes


def _login(http: httpx.Client, context: Context) -> str:
    """A fresh access token. Logins fail closed while the gateway cannot count
    them (its Redis breaker open after a Redis fault): wait that out."""
    credentials = {"email": context.email, "password": context.password}
    deadline = time.monotonic() + 60
    while True:
        response = http.post("/api/v1/auth/login", json=credentials)
        if response.status_code != 503 or time.monotonic() > deadline:
            response.raise_for_status()
            token: str = response.json()["access_token"]
            return token
        time.sleep(0.5)


def _known(context: Context, code: str) -> Callable[[], bool]:
    return lambda: counted_clicks(context, code) is not None


async def run_experiment(
    experiment: Experiment, target: Target, context: Context, rate: float, links: int
) -> Outcome:
    outcome = Outcome(experiment)
    control = await asyncio.to_thread(target.latency) if experiment.fault == "latency" else None
    try:
        return await _run(experiment, target, context, rate, links, outcome, control)
    finally:
        if control is not None:
            await asyncio.to_thread(control.close)


async def _run(  # noqa: PLR0917 - one experiment's parts
    experiment: Experiment,
    target: Target,
    context: Context,
    rate: float,
    links: int,
    outcome: Outcome,
    control: Latency | None,
) -> Outcome:
    # A latency experiment's traffic goes through the gateway behind the slow path.
    gateway = control.gateway if control is not None else target.gateway
    context = replace(context, gateway=gateway)
    if await asyncio.to_thread(wait_for, lambda: ready(gateway), 60) is None:
        outcome.fail("the gateway was not ready before the experiment")
        return outcome
    context, codes = await asyncio.to_thread(seed, context, links)
    traffic = Traffic(gateway, codes, rate)
    sending = asyncio.create_task(traffic.run())
    try:
        await _phases(experiment, target, context, traffic, outcome, control)
    finally:
        await asyncio.sleep(AFTER_SECONDS)
        traffic.stop()
        await sending
    await asyncio.to_thread(_count_clicks, context, traffic, outcome)
    return outcome


async def _phases(  # noqa: PLR0917 - one experiment's parts
    experiment: Experiment,
    target: Target,
    context: Context,
    traffic: Traffic,
    outcome: Outcome,
    control: Latency | None,
) -> None:
    gateway = context.gateway
    await asyncio.sleep(STEADY_SECONDS)
    steady = traffic.window(0, time.monotonic())
    if steady.success < 1.0:
        outcome.fail(f"steady state not met before the fault ({steady.statuses})")
        return
    settled = lambda: ready(gateway) and not open_breakers(gateway)  # noqa: E731
    if await asyncio.to_thread(wait_for, settled, 15) is None:
        found = open_breakers(gateway)
        outcome.fail(f"not steady before the fault (ready, breakers open: {found})")
        return
    t0 = time.monotonic()
    await asyncio.to_thread(_inject, experiment, target, control)
    opened = asyncio.create_task(asyncio.to_thread(_breaker_opened, experiment, gateway))
    seen = await asyncio.to_thread(all_hold, experiment.probes, context)
    outcome.failures += [f"during the fault: {s}" for s in seen]
    await asyncio.sleep(max(0.0, experiment.hold_seconds - (time.monotonic() - t0)))
    removed = time.monotonic()
    await asyncio.to_thread(_remove, experiment, target, control)
    t1 = time.monotonic()
    outcome.observed.append(f"down {t1 - t0:.1f} s")
    _judge_fault_window(experiment, traffic.window(t0, t1), outcome, await opened)
    stale = sum(1 for s in traffic.samples if t0 <= s.sent < t1 and s.stale)
    if stale:
        outcome.observed.append(f"{stale} answered from the stale cache")
    recovered = await _recovered(experiment, gateway, traffic, removed, t1)
    if recovered is None:
        outcome.fail(f"not back to steady state within {experiment.max_rto_seconds:.0f} s")
    else:
        outcome.rto_seconds = recovered
        if recovered > experiment.max_rto_seconds:
            outcome.fail(f"RTO {recovered:.1f} s")


def _inject(experiment: Experiment, target: Target, control: Latency | None) -> None:
    name = experiment.component
    if control is not None:
        control.add(experiment.delay_ms)
    elif experiment.fault == "roll":
        target.roll(name)
    elif experiment.fault == "pause":
        target.pause(name)
    else:
        signum = signal.SIGKILL if experiment.fault == "kill" else signal.SIGTERM
        target.kill(name, signum, experiment.hold_seconds)


def _remove(experiment: Experiment, target: Target, control: Latency | None) -> None:
    """End the fault; for a killed piece, until its supervisor has it back."""
    name = experiment.component
    if control is not None:
        control.remove()
    elif experiment.fault == "pause":
        target.resume(name)
    elif experiment.fault != "roll":
        target.restore(name)
        target.wait_back(name, 90)


def _breaker_opened(experiment: Experiment, gateway: str) -> float | None:
    if experiment.breaker is None:
        return None
    name = experiment.breaker
    return wait_for(
        lambda: breaker_state(gateway, name) == 1, experiment.breaker_opens_within, 0.05
    )


def _judge_fault_window(
    experiment: Experiment, during: WindowStats, outcome: Outcome, opened_after: float | None
) -> None:
    outcome.observed.append(
        f"{during.success:.1%} of {during.requests} redirects ok, p99 {during.p99_ms:.0f} ms"
    )
    if during.success < experiment.min_success:
        outcome.fail(f"redirect success {during.success:.1%} (statuses {during.statuses})")
    if during.p99_ms > experiment.max_p99_ms:
        outcome.fail(f"p99 {during.p99_ms:.0f} ms")
    if experiment.breaker is not None:
        if opened_after is None:
            outcome.fail(f"{experiment.breaker} breaker did not open")
        else:
            outcome.observed.append(f"breaker open after {opened_after:.2f} s")


async def _recovered(
    experiment: Experiment, gateway: str, traffic: Traffic, removed: float, back: float
) -> float | None:
    deadline = removed + experiment.max_rto_seconds + 30
    while time.monotonic() < deadline:
        now = time.monotonic()
        last = [s for s in traffic.samples if now - 1.0 <= s.sent < now - 0.2]
        fresh = last and all(300 <= s.status < 400 and not s.stale for s in last)
        # Every breaker, not only the experiment's: after a Redis fault the
        # gateway's rate-limit breaker closing is part of recovering.
        closed = not await asyncio.to_thread(open_breakers, gateway)
        if fresh and closed and await asyncio.to_thread(ready, gateway):
            # Steady since the start of the clean second just seen, and not
            # before the piece was back.
            return max(back, now - 1.0) - removed
        await asyncio.sleep(0.2)
    return None


def _count_clicks(context: Context, traffic: Traffic, outcome: Outcome) -> None:
    expected = traffic.redirects_by_code()
    outcome.clicks_expected = sum(expected.values())

    def counted() -> int:
        return sum(counted_clicks(context, code) or 0 for code in expected)

    # Until all are counted, or the count has not moved for a while (the
    # rest are lost), or the time is up.
    last, moved_at, deadline = -1, time.monotonic(), time.monotonic() + CLICKS_TIMEOUT
    while time.monotonic() < deadline:
        now = counted()
        if now >= outcome.clicks_expected:
            break
        if now != last:
            last, moved_at = now, time.monotonic()
        elif time.monotonic() - moved_at > CLICKS_SETTLED:
            break
        time.sleep(1.0)
    time.sleep(1.0)  # a moment longer, to see any click counted twice
    outcome.clicks_counted = counted()
    extra = outcome.clicks_counted - outcome.clicks_expected
    outcome.observed.append(
        f"clicks {outcome.clicks_counted}/{outcome.clicks_expected} counted"
        + (f" ({extra} extra)" if extra > 0 else "")
    )
    if extra > 0:
        outcome.fail(f"{extra} clicks counted twice")
    allowed = outcome.experiment.max_clicks_lost
    if allowed is not None and outcome.rpo_events > allowed:
        outcome.fail(f"{outcome.rpo_events} clicks lost")
