"""What the benchmarks' reports compute from a run, with the run made up."""

from __future__ import annotations

from loadtests.bench_run import BenchRun, Measured, OpenLoopRun, upper_median
from loadtests.openloop import OpenLoopResult
from loadtests.openloop_report import (
    HOP_OPEN_LOOP,
    LINK_OPEN_LOOP,
    TWO_HOP_OPEN_LOOP,
    by_rate,
    open_loop_cpu,
    open_loop_table,
)
from loadtests.redirect_report import _targets
from loadtests.wrk import WrkResult

RUN = WrkResult(1000, 1.0, 1.0, 2.0, 3.0, 4.0, 0, 0)


def test_a_service_cpu_sums_its_replicas_and_nothing_else() -> None:
    spent = {"gateway": 1.0, "gateway-2": 0.5, "gateway-uncached": 8.0, "link": 2.0}
    measured = Measured("row", RUN, spent)
    assert measured.service_cpu_seconds("gateway") == 1.5
    assert measured.service_cpu_seconds("link") == 2.0
    assert measured.service_cpu_seconds("user") == 0.0


def test_open_loop_cpu_is_per_answered_request_by_process() -> None:
    result = OpenLoopResult(rate=1000, seconds=10, scheduled=10_000, answered=8_000)
    spent = {"gateway": 4.0, "link": 2.0}
    run = BenchRun(10, 50, 2, 1000)
    run.open_loop.append(OpenLoopRun("hop", result, spent, machine_cores=1.25, stolen_cores=0.5))
    assert run.open_loop[0].ms_per_request("gateway") == 0.5
    table = open_loop_cpu(run)
    assert table.splitlines()[0] == "| target | gateway | link |"
    assert table.splitlines()[2] == "| hop | 0.50 | 0.25 |"
    assert "| 1.25 cores | 0.50 cores |" in open_loop_table(run.open_loop)


def result(latency_ms: float, late: int = 0) -> OpenLoopResult:
    return OpenLoopResult(1000, 10, 100, 100, missed_slots=late, latencies_ms=[latency_ms] * 100)


def test_the_link_hop_is_shown_beside_its_reference_never_judged() -> None:
    run = BenchRun(10, 50, 2, 1000)
    run.open_loop += [
        OpenLoopRun(HOP_OPEN_LOOP, result(4.0, 0), {}, 1.0),
        OpenLoopRun(LINK_OPEN_LOOP, result(25.0, 3), {}, 1.5),
        OpenLoopRun(TWO_HOP_OPEN_LOOP, result(8.0, 0), {}, 1.0),
    ]
    lines = _targets(run).splitlines()
    p99 = next(line for line in lines if line.startswith(f"| {HOP_OPEN_LOOP}: p99"))
    assert p99.endswith("| 4.0 ms | met |")
    p99 = next(line for line in lines if line.startswith(f"| {LINK_OPEN_LOOP}: p99"))
    assert "| 25.0 ms (bare two hops: 8.0 ms) | shown, not a goal |" in p99
    late = next(line for line in lines if line.startswith(f"| {LINK_OPEN_LOOP}: sent"))
    assert "| 3.0% (bare two hops: 0.0%) | shown, not a goal |" in late
    # The reference is shown beside the hop, never on its own.
    assert not any(line.startswith(f"| {TWO_HOP_OPEN_LOOP}") for line in lines)


def test_the_read_model_s_path_is_shown_rate_by_rate() -> None:
    def at(label: str, rate: float) -> OpenLoopRun:
        return OpenLoopRun(label, OpenLoopResult(rate, 10, int(rate * 10)), {}, 1.0)

    run = BenchRun(10, 50, 2, 1000)
    run.open_loop += [at("floor", 1000)] + [
        at(label, 1000) for _ in range(2) for label in (HOP_OPEN_LOOP, LINK_OPEN_LOOP)
    ]
    run.lower_rates += [at(HOP_OPEN_LOOP, 250), at(HOP_OPEN_LOOP, 500)]
    shown = [(o.label, o.result.rate) for o in by_rate(run)]
    assert shown == [
        (HOP_OPEN_LOOP, 250),
        (HOP_OPEN_LOOP, 500),
        (HOP_OPEN_LOOP, 1000),
        (HOP_OPEN_LOOP, 1000),
    ]
    # The lower rates stay out of the targets and of the main open-loop table.
    assert "250/s" not in open_loop_table(run.open_loop)
    assert "250/s" not in _targets(run)


def test_an_open_loop_bound_is_judged_on_the_median_of_its_runs_each_shown() -> None:
    run = BenchRun(10, 50, 2, 1000)
    runs = [(12.0, 3), (8.0, 0), (9.5, 1)]  # p99 ms, requests late of 100
    run.open_loop += [OpenLoopRun(HOP_OPEN_LOOP, result(ms, late), {}, 1.0) for ms, late in runs]
    lines = _targets(run).splitlines()
    p99 = next(line for line in lines if line.startswith(f"| {HOP_OPEN_LOOP}: p99"))
    assert "| 9.5 ms, median of 3 runs: 12.0 ms, 8.0 ms, 9.5 ms |" in p99
    assert p99.endswith("| met |")
    late = next(line for line in lines if line.startswith(f"| {HOP_OPEN_LOOP}: sent"))
    assert "| 1.0%, median of 3 runs: 3.0%, 0.0%, 1.0% |" in late
    assert late.endswith("| met |")
    # One run over the bound in three does not decide; two do.
    run.open_loop[1] = OpenLoopRun(HOP_OPEN_LOOP, result(10.5), {}, 1.0)
    lines = _targets(run).splitlines()
    p99 = next(line for line in lines if line.startswith(f"| {HOP_OPEN_LOOP}: p99"))
    assert p99.endswith("| **NOT met** |")


def test_an_even_number_of_runs_is_judged_on_the_worse_middle_one() -> None:
    assert upper_median([3.0, 1.0]) == 3.0
    assert upper_median([4.0, 1.0, 3.0, 2.0]) == 3.0
    assert upper_median([7.0]) == 7.0


def test_open_loop_cpu_shows_each_targets_median_run() -> None:
    run = BenchRun(10, 50, 2, 1000)
    done = OpenLoopResult(rate=1000, seconds=10, scheduled=1000, answered=1000)
    for spent in (1.0, 0.4, 0.5):
        run.open_loop.append(OpenLoopRun(HOP_OPEN_LOOP, done, {"gateway": spent}, 1.0))
    assert open_loop_cpu(run).splitlines()[2] == f"| {HOP_OPEN_LOOP} | 0.50 |"


def test_a_ratio_just_under_its_goal_never_reads_as_the_goal() -> None:
    def row(rate: float) -> str:
        run = BenchRun(10, 50, 2, 1000)
        run.floor = Measured("floor", WrkResult(46480, 10.0, 1.0, 2.0, 3.0, 4.0, 0, 0), {})
        created = WrkResult(int(rate * 10), 10.0, 1.0, 2.0, 3.0, 4.0, 0, 0)
        run.scenarios.append(Measured("d. create", created, {}, floor_rate=4648))
        return next(line for line in _targets(run).splitlines() if line.startswith("| d."))

    assert "| 0.099x floor | **NOT met** |" in row(461)
    assert "| 0.10x floor | met |" in row(465)
    assert "| 0.13x floor | met |" in row(600)
