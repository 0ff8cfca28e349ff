"""The open-loop part of the ``bench`` section (loadtests/redirect_report.py):
its tables and its targets, each bound judged on the median of its runs."""

from __future__ import annotations

from collections.abc import Callable

from loadtests.bench_run import BenchRun, OpenLoopRun, upper_median
from loadtests.openloop import OpenLoopResult

__all__ = [
    "HOP_OPEN_LOOP",
    "LINK_OPEN_LOOP",
    "TWO_HOP_OPEN_LOOP",
    "by_rate",
    "open_loop_cpu",
    "open_loop_table",
    "open_loop_targets",
    "process_order",
]

HOP_OPEN_LOOP = "gateway, memory off: read model"
LINK_OPEN_LOOP = "gateway → link, memory and read model off"
TWO_HOP_OPEN_LOOP = "bare two hops (reference)"
# open-loop row label -> the most its p99 may be, in ms
OPEN_LOOP_P99_TARGETS_MS = {"gateway, hot link": 5.0, HOP_OPEN_LOOP: 10.0}
# open-loop row label -> the row measured beside it that shows what the
# machine gives the same path with nothing of the system on it
OPEN_LOOP_REFERENCES = {LINK_OPEN_LOOP: TWO_HOP_OPEN_LOOP}
# Shown with the targets against the same bound, not judged: the link hop,
# which the read model took off the proxied path (ADR 0022) and which each
# link's first visit, and every visit of a visit-limited one, still takes.
OPEN_LOOP_SHOWN_MS = {LINK_OPEN_LOOP: 10.0}
MISSED_SLOTS_TARGET = 0.01  # requests sent more than 2 ms late, at most this share
_MS, _SHARE = "{:,.1f} ms", "{:.1%}"


def by_rate(run: BenchRun) -> list[OpenLoopRun]:
    """The read model's path at every rate offered, rate by rate, each rate's
    runs in the order they ran."""
    labels = (HOP_OPEN_LOOP,)
    runs = [o for o in [*run.open_loop, *run.lower_rates] if o.label in labels]
    return sorted(runs, key=lambda o: o.result.rate)


def open_loop_table(runs: list[OpenLoopRun]) -> str:
    rows = [
        "| target | offered | answered | p50 | p90 | p99 | p99.9 "
        "| missed slot | errors | unfinished | machine busy | stolen |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in runs:
        r = o.result
        p = [f"{r.percentile(q):,.1f} ms" for q in (50, 90, 99, 99.9)]
        rows.append(
            f"| {o.label} | {r.rate:,.0f}/s x {r.seconds:.0f} s | {r.answered:,} "
            f"| {' | '.join(p)} "
            f"| {r.missed_slots:,} ({100 * r.missed_slots / max(r.scheduled, 1):.0f}%) "
            f"| {r.errors:,} | {r.unfinished:,} | {o.machine_cores:.2f} cores "
            f"| {o.stolen_cores:.2f} cores |"
        )
    return "\n".join(rows)


def open_loop_cpu(run: BenchRun) -> str:
    """CPU a request by process, each target's median over its runs."""
    names = sorted({n for o in run.open_loop for n in o.cpu_seconds}, key=process_order)
    rows = ["| target | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label, runs in run.open_loop_runs().items():
        medians = [upper_median([o.ms_per_request(n) for o in runs]) for n in names]
        rows.append(f"| {label} | " + " | ".join(f"{v:.2f}" for v in medians) + " |")
    return "\n".join(rows)


def process_order(name: str) -> int:
    order = [
        "floor",
        "2-hop front",
        "2-hop back",
        "gateway",
        "gateway-2",
        "link",
        "user",
        "analytics",
        "redis",
        "postgres",
        "broker",
    ]
    return order.index(name) if name in order else len(order)


def open_loop_targets(run: BenchRun) -> list[tuple[str, str, str, bool | None]]:
    """The open-loop targets' rows: each bound judged on the median of its runs
    (None: a row shown against a bound, not judged)."""
    rows: list[tuple[str, str, str, bool | None]] = []
    by_label = {label: [o.result for o in runs] for label, runs in run.open_loop_runs().items()}
    for label, results in by_label.items():
        judged = label in OPEN_LOOP_P99_TARGETS_MS
        bound = OPEN_LOOP_P99_TARGETS_MS.get(label) or OPEN_LOOP_SHOWN_MS.get(label)
        if bound is None:
            continue
        p99, late = (
            upper_median([_p99(r) for r in results]),
            upper_median([_late(r) for r in results]),
        )
        p99_got, late_got = _over_runs(results, _MS, _p99), _over_runs(results, _SHARE, _late)
        reference = by_label.get(OPEN_LOOP_REFERENCES.get(label, ""))
        if reference is not None:
            p99_got += f" (bare two hops: {_over_runs(reference, _MS, _p99)})"
            late_got += f" (bare two hops: {_over_runs(reference, _SHARE, _late)})"
        offered = f"{results[0].rate:,.0f}/s offered"
        p99_ok, late_ok = p99 <= bound, late <= MISSED_SLOTS_TARGET
        rows.append((f"{label}: p99 at {offered}", f"≤ {bound:.0f} ms", p99_got,
                     p99_ok if judged else None))  # fmt: skip
        rows.append((f"{label}: sent > 2 ms late", f"≤ {MISSED_SLOTS_TARGET:.0%}",
                     late_got, late_ok if judged else None))  # fmt: skip
    return rows


def _over_runs(
    results: list[OpenLoopResult], form: str, value: Callable[[OpenLoopResult], float]
) -> str:
    """A figure's median over ``results``, followed by each run's, in the order they ran."""
    values = [value(r) for r in results]
    median = form.format(upper_median(values))
    if len(values) == 1:
        return median
    each = ", ".join(form.format(v) for v in values)
    return f"{median}, median of {len(values)} runs: {each}"


def _p99(result: OpenLoopResult) -> float:
    return result.percentile(99)


def _late(result: OpenLoopResult) -> float:
    """The share of requests sent more than 2 ms after their due time."""
    return result.missed_slots / max(result.scheduled, 1)
