"""Running one experiment: seed, steady state, fault, recovery, judgement.

    seed links -> traffic on -> steady state holds? -> fault (t0)
      -> fault removed (t1: SIGCONT, or the killed piece back) -> steady again (RTO)
      -> traffic off -> wait for analytics to count every redirect (RPO)

RTO is measured from the fault's removal, or for a kill from the kill
itself (the restart is part of recovering), to the first moment from which
the gateway is ready, all its breakers closed and a full second of redirects
answered fresh (not from the stale cache), those of the visit-limited links
(chaos/traffic.py) by the link service. RPO is the clicks lost: the clicks
owed (redirects returned; for a visit-limited link, the visits the link
service counted) minus clicks counted once the pipeline has caught up
(chaos/judge.py).
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import replace

from chaos.experiments import Experiment
from chaos.judge import Outcome, judge_clicks, judge_fault_window, judge_run
from chaos.latency import Latency
from chaos.probes import (
    Context,
    all_hold,
    breaker_state,
    counted_clicks,
    counted_visits,
    open_breakers,
    wait_for,
)
from chaos.seeding import seed
from chaos.target import Target, ready
from chaos.traffic import LIMITED, PUBLISHED, Traffic

__all__ = ["run_experiment"]

STEADY_SECONDS = 3.0
AFTER_SECONDS = 2.0
CLICKS_TIMEOUT = 90.0
CLICKS_SETTLED = 20.0


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
    context, seeded = await asyncio.to_thread(seed, context, links)
    traffic = Traffic(gateway, seeded, rate)
    sending = asyncio.create_task(traffic.run())
    try:
        await _phases(experiment, target, context, traffic, outcome, control)
    finally:
        await asyncio.sleep(AFTER_SECONDS)
        traffic.stop()
        await sending
    judge_run(traffic.samples, outcome)
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
    judge_fault_window(experiment, traffic.between(t0, t1), outcome, await opened)
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


async def _recovered(
    experiment: Experiment, gateway: str, traffic: Traffic, removed: float, back: float
) -> float | None:
    deadline = removed + experiment.max_rto_seconds + 30
    while time.monotonic() < deadline:
        now = time.monotonic()
        last = [s for s in traffic.samples if now - 1.0 <= s.sent < now - 0.2]
        fresh = last and all(s.redirected and s.cache != "stale" for s in last)
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
    links = traffic.links
    visits = {code: _visits(context, code, outcome) for code in links.limited}
    published = traffic.redirects_by_code(PUBLISHED)
    expected = sum(published.values()) + sum(visits.values())

    def counted() -> int:
        return sum(counted_clicks(context, code) or 0 for code in (*links.published, *visits))

    # Until all are counted, or the count has not moved for a while (the
    # rest are lost), or the time is up.
    last, moved_at, deadline = -1, time.monotonic(), time.monotonic() + CLICKS_TIMEOUT
    while time.monotonic() < deadline:
        now = counted()
        if now >= expected:
            break
        if now != last:
            last, moved_at = now, time.monotonic()
        elif time.monotonic() - moved_at > CLICKS_SETTLED:
            break
        time.sleep(1.0)
    time.sleep(1.0)  # a moment longer, to see any click counted twice
    judge_clicks(outcome, published, traffic.redirects_by_code(LIMITED), visits, counted())


def _visits(context: Context, code: str, outcome: Outcome) -> int:
    """The visits the link service counted for visit-limited ``code``."""
    deadline = time.monotonic() + 30
    while (visits := counted_visits(context, code)) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    if visits is None:
        outcome.fail(f"the link service never told the visits of {code}")
        return 0
    return visits
