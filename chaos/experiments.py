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

The traffic goes to two kinds of links (chaos/traffic.py). The published
ones are answered by the gateway itself (memory, read model); they must meet
``min_success`` and ``max_p99_ms`` in every experiment. The visit-limited
ones must meet the same bounds too, except where the fault takes away what
every one of their visits needs, the link service or the Postgres that
counts it (``limited_refusable``):
there each must be redirected or refused with 503 or 504, and quickly
(p99 within ``max_p99_ms``); never a status 0, 500 or 502, never an answer
the gateway made up itself (a replay would let a visit past its count).
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
    max_p99_ms: float  # over the same requests (of each kind of link)
    # The fault takes away what each visit of a visit-limited link needs (the
    # link service, or the Postgres that counts it): they may be refused (503/504).
    limited_refusable: bool = False
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
        bounds = f"redirects >= {self.min_success:.0%}, p99 <= {self.max_p99_ms:.0f} ms"
        if self.limited_refusable:
            parts = [
                f"published links: {bounds}",
                f"visit-limited links: 3xx, 503 or 504 only, p99 <= {self.max_p99_ms:.0f} ms",
            ]
        else:
            parts = [f"both kinds of links: {bounds}"]
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
        limited_refusable=True,
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
        limited_refusable=True,
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
        # Published links never reach the link service (memory, read model).
        # Visit-limited ones already sent wait for the 2 s timeout (504), then
        # are refused at once (503) while the breaker is open.
        min_success=0.99,
        max_p99_ms=2600,
        breaker="link",
        limited_refusable=True,
        # Five timeouts in a row open it: visit-limited visits, ten a second,
        # so the fifth timeout ends some 2.5 s after the freeze.
        breaker_opens_within=7,
    ),
    Experiment(
        "latency-link",
        "link",
        "latency",
        "link service answers 2.5 s late for 6 s (past the gateway's 2 s timeout)",
        hold_seconds=6,
        delay_ms=2500,
        # Visit-limited visits caught by the delay wait for the timeout (504);
        # five timeouts open the breaker, as for freeze-link. Locally the proxy's
        # restart (connections broken, refused while it starts) often opens it first.
        min_success=0.99,
        max_p99_ms=2600,
        breaker="link",
        limited_refusable=True,
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
        limited_refusable=True,
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
