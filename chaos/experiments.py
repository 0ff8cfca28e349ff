"""The experiments: which piece fails, how, and what must still hold.

Every experiment runs redirect traffic throughout and judges the requests
sent while the fault was on. ``kill`` is SIGKILL, a crash; ``term`` is
SIGTERM, an orderly stop (a deploy, a node drained). The piece stays down
for ``hold_seconds``, then its supervisor (the devstack runner, or compose)
starts it again: that restart is part of the recovery measured. ``pause``
is SIGSTOP for ``hold_seconds``, then SIGCONT: a hung process, its
connections open and nothing answering. ``roll`` replaces a process the way a
deploy does: the new one first, then SIGTERM to the old one, which drains.
``latency`` delays the link service's answers to a gateway by ``delay_ms``
(chaos/latency.py: a `faulty` proxy locally, toxiproxy in compose).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from chaos.probes import (
    Probe,
    logins_unavailable_tokens_valid,
    stats_unavailable,
    writes_refused_quickly,
)

__all__ = ["EXPERIMENTS", "Experiment", "by_name"]


@dataclass(frozen=True)
class Experiment:
    name: str
    component: str
    fault: Literal["kill", "term", "pause", "roll", "latency"]
    summary: str
    min_success: float  # share of redirects answered 3xx while the fault is on
    max_p99_ms: float  # over the same requests
    hold_seconds: float = 0.0  # how long the piece stays down, frozen or slow
    delay_ms: int = 0  # latency added to the link service's answers
    breaker: str | None = None  # the gateway breaker that must open, then close
    breaker_opens_within: float = 5.0
    probes: Sequence[Probe] = field(default=())
    # Clicks that may be lost: 0, except where a fault destroys memory that
    # holds events (a crashed publisher's buffer, the in-memory broker's
    # log); None: any number, reported as the RPO.
    max_clicks_lost: int | None = 0
    max_rto_seconds: float = 45.0

    def expectation(self) -> str:
        parts = [f"redirects >= {self.min_success:.0%}", f"p99 <= {self.max_p99_ms:.0f} ms"]
        if self.breaker:
            parts.append(f"{self.breaker} breaker opens <= {self.breaker_opens_within:.0f} s")
        parts += [p.__doc__.strip().rstrip(".") for p in self.probes if p.__doc__]
        if self.max_clicks_lost is None:
            parts.append("clicks lost reported")
        else:
            parts.append(f"<= {self.max_clicks_lost} clicks lost")
        parts.append(f"RTO <= {self.max_rto_seconds:.0f} s")
        return "; ".join(parts)


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment(
        "restart-gateway",
        "gateway",
        "roll",
        "rolling restart of the gateway under load (new process first, old one drains)",
        # Not one request it accepted may be lost.
        min_success=1.0,
        max_p99_ms=1000,
    ),
    Experiment(
        "restart-link",
        "link",
        "term",
        "link service stopped (SIGTERM) and started again 3 s later",
        hold_seconds=3,
        min_success=0.99,
        max_p99_ms=1000,
        breaker="link",
    ),
    Experiment(
        "kill-link",
        "link",
        "kill",
        "link service crashes (SIGKILL), down for 3 s",
        hold_seconds=3,
        min_success=0.99,
        max_p99_ms=1000,
        breaker="link",
        # Clicks it had buffered but not yet sent (a few milliseconds' worth)
        # die with it: the price of never waiting for the broker on a redirect.
        max_clicks_lost=3,
    ),
    Experiment(
        "freeze-link",
        "link",
        "pause",
        "link service frozen for 6 s (SIGSTOP)",
        hold_seconds=6,
        # Requests already sent wait for the 2 s timeout, then get a stale replay.
        min_success=0.99,
        max_p99_ms=2600,
        breaker="link",
        # Five timeouts in a row open it. With the gateway's redirect cache only
        # entries due for a refresh reach the link service (about 2/s with 10
        # links), so the fifth timeout ends some 4-5 s after the freeze.
        breaker_opens_within=7,
    ),
    Experiment(
        "latency-link",
        "link",
        "latency",
        "link service answers 2.5 s late for 6 s (past the gateway's 2 s timeout)",
        hold_seconds=6,
        delay_ms=2500,
        # Requests caught by the delay wait for the timeout, then get a stale replay;
        # five timeouts open the breaker, as for freeze-link (plus the proxy's restart).
        min_success=0.99,
        max_p99_ms=2600,
        breaker="link",
        breaker_opens_within=7,
    ),
    Experiment(
        "restart-analytics",
        "analytics",
        "term",
        "analytics service stopped (SIGTERM): finishes its batch, leaves its group; back 3 s later",
        hold_seconds=3,
        min_success=1.0,
        max_p99_ms=500,
    ),
    Experiment(
        "kill-analytics",
        "analytics",
        "kill",
        "analytics service crashes, down for 5 s",
        hold_seconds=5,
        min_success=1.0,
        max_p99_ms=500,
        probes=(stats_unavailable,),
    ),
    Experiment(
        "kill-user",
        "user",
        "kill",
        "user service crashes, down for 5 s",
        hold_seconds=5,
        min_success=1.0,
        max_p99_ms=500,
        probes=(logins_unavailable_tokens_valid,),
    ),
    Experiment(
        "kill-redis",
        "redis",
        "kill",
        "Redis crashes, down for 5 s (cache and rate-limit counts lost)",
        hold_seconds=5,
        min_success=0.99,
        max_p99_ms=1000,
    ),
    Experiment(
        "kill-postgres",
        "postgres",
        "kill",
        "Postgres crashes, down for 5 s (every service's database)",
        hold_seconds=5,
        min_success=0.99,
        max_p99_ms=1000,
        probes=(writes_refused_quickly,),
        max_rto_seconds=60,
    ),
    Experiment(
        "freeze-broker",
        "broker",
        "pause",
        "broker frozen for 8 s (SIGSTOP)",
        hold_seconds=8,
        min_success=1.0,
        max_p99_ms=500,
    ),
    Experiment(
        "kill-broker",
        "broker",
        "kill",
        "broker crashes, down for 5 s: its storage is memory, unconsumed events die with it",
        hold_seconds=5,
        min_success=1.0,
        max_p99_ms=500,
        max_clicks_lost=None,
        max_rto_seconds=60,
    ),
)


def by_name(names: Sequence[str]) -> list[Experiment]:
    known = {e.name: e for e in EXPERIMENTS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(
            f"chaos: unknown experiment(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    return [known[n] for n in names]
