"""Judging an experiment from what its traffic saw: the fault window, by kind
of link (chaos/traffic.py), and the clicks.

During the fault, published links must meet the experiment's bounds. So
must visit-limited links, unless the fault takes away the link service or
the Postgres that counts their visits (``Experiment.limited_refusable``):
then each visit is redirected or refused with 503 or 504, within the same
p99. In every experiment, no visit-limited link is ever answered by the
gateway itself (memory, read model, stale replay): that visit would not be
counted against its limit.

Clicks: analytics must end up counting each redirect of a published link
once, and for a visit-limited link each visit the link service counted (its
click event follows its count in Postgres). Those are the redirects it
returned, plus any visit it counted but answered after the gateway had given
up on it (504 or 503 to the visitor): reported, since the visitor was not
redirected. A redirect of a visit-limited link the link service did not count
fails the experiment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chaos.experiments import Experiment
from chaos.traffic import LIMITED, PUBLISHED, Sample, WindowStats, summarize

__all__ = ["REFUSALS", "Outcome", "describe", "judge_clicks", "judge_fault_window", "judge_run"]

# What a visit-limited link may answer instead of a redirect while the link
# service is away: the breaker open or the service unreachable, or its timeout.
REFUSALS = (503, 504)
_ANSWERED_BY = (
    ("hit", "the gateway's memory"),
    ("shared", "the read model"),
    ("stale", "the stale cache"),
)


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


def describe(label: str, stats: WindowStats) -> str:
    """``label: 99.0% of 200 redirects ok, p99 12 ms[, 2 refused (503: 2)]``."""
    ok = f"{stats.success:.1%} of {stats.requests} redirects ok"
    text = f"{label}: {ok}, p99 {stats.p99_ms:.0f} ms"
    refused = stats.refused
    if refused:
        counts = ", ".join(f"{status}: {n}" for status, n in refused.items())
        text += f", {sum(refused.values())} refused ({counts})"
    return text


def judge_fault_window(
    experiment: Experiment, during: Sequence[Sample], outcome: Outcome, opened_after: float | None
) -> None:
    """Judge the requests sent while the fault was on; ``opened_after``: when
    the experiment's breaker was seen open, if it was."""
    published = summarize(s for s in during if s.kind == PUBLISHED)
    limited = summarize(s for s in during if s.kind == LIMITED)
    outcome.observed.append(describe("published links", published))
    _within_bounds(experiment, "published links", published, outcome)
    if limited.requests:
        outcome.observed.append(describe("visit-limited links", limited))
        if experiment.limited_refusable:
            _refused_quickly(experiment, limited, outcome)
        else:
            _within_bounds(experiment, "visit-limited links", limited, outcome)
    answered_by = summarize(during).answered_by
    outcome.observed += [
        f"{answered_by[how]} answered from {what}"
        for how, what in _ANSWERED_BY
        if how in answered_by
    ]
    if experiment.breaker is not None:
        if opened_after is None:
            outcome.fail(f"{experiment.breaker} breaker did not open")
        else:
            outcome.observed.append(f"breaker open after {opened_after:.2f} s")


def _within_bounds(
    experiment: Experiment, label: str, stats: WindowStats, outcome: Outcome
) -> None:
    if stats.success < experiment.min_success:
        outcome.fail(f"{label}: redirect success {stats.success:.1%} (statuses {stats.statuses})")
    if stats.p99_ms > experiment.max_p99_ms:
        outcome.fail(f"{label}: p99 {stats.p99_ms:.0f} ms")


def _refused_quickly(experiment: Experiment, stats: WindowStats, outcome: Outcome) -> None:
    wrong = {status: n for status, n in stats.refused.items() if status not in REFUSALS}
    if wrong:
        outcome.fail(f"visit-limited links answered {wrong}: only 3xx, 503 or 504 may be")
    if stats.p99_ms > experiment.max_p99_ms:
        outcome.fail(f"visit-limited links: p99 {stats.p99_ms:.0f} ms")


def judge_run(samples: Sequence[Sample], outcome: Outcome) -> None:
    """Over the whole run: no visit-limited link answered by the gateway itself."""
    made_up = Counter(s.cache for s in samples if s.kind == LIMITED and s.cache)
    if made_up:
        outcome.fail(
            f"visit-limited links answered by the gateway itself {dict(made_up)}: "
            "visits not counted against their limit"
        )


def judge_clicks(
    outcome: Outcome,
    published: Mapping[str, int],
    limited: Mapping[str, int],
    visits: Mapping[str, int],
    counted: int,
) -> None:
    """``published``, ``limited``: redirects returned by code; ``visits``: the
    visits the link service counted, by visit-limited code; ``counted``: the
    clicks analytics counted for all of them."""
    uncounted = sum(max(0, n - visits.get(code, 0)) for code, n in limited.items())
    late = sum(max(0, n - limited.get(code, 0)) for code, n in visits.items())
    outcome.clicks_expected = sum(published.values()) + sum(visits.values())
    outcome.clicks_counted = counted
    extra = counted - outcome.clicks_expected
    outcome.observed.append(
        f"clicks {counted}/{outcome.clicks_expected} counted"
        + (f" ({extra} extra)" if extra > 0 else "")
    )
    if visits:
        outcome.observed.append(
            f"{sum(visits.values())} visits of visit-limited links counted by the link "
            f"service, for {sum(limited.values())} redirects"
            + (f" ({late} not redirected: answered after the gateway gave up)" if late else "")
        )
    if uncounted:
        outcome.fail(f"{uncounted} visit-limited redirects not counted by the link service")
    if extra > 0:
        outcome.fail(f"{extra} clicks counted twice")
    allowed = outcome.experiment.max_clicks_lost
    if allowed is not None and outcome.rpo_events > allowed:
        outcome.fail(f"{outcome.rpo_events} clicks lost")
