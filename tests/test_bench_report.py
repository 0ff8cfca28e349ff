"""What the benchmarks' reports compute from a run, with the run made up."""

from __future__ import annotations

from loadtests.bench_run import BenchRun, Measured, OpenLoopRun
from loadtests.openloop import OpenLoopResult
from loadtests.redirect_report import _open_loop, _open_loop_cpu
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
    table = _open_loop_cpu(run)
    assert table.splitlines()[0] == "| target | gateway | link |"
    assert table.splitlines()[2] == "| hop | 0.50 | 0.25 |"
    assert "| 1.25 cores | 0.50 cores |" in _open_loop(run)
