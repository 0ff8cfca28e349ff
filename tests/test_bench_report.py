"""What the benchmarks' reports compute from a run, with the run made up."""

from __future__ import annotations

from loadtests.redirect_report import Measured
from loadtests.wrk import WrkResult

RUN = WrkResult(1000, 1.0, 1.0, 2.0, 3.0, 4.0, 0, 0)


def test_a_service_cpu_sums_its_replicas_and_nothing_else() -> None:
    spent = {"gateway": 1.0, "gateway-2": 0.5, "gateway-uncached": 8.0, "link": 2.0}
    measured = Measured("row", RUN, spent)
    assert measured.service_cpu_seconds("gateway") == 1.5
    assert measured.service_cpu_seconds("link") == 2.0
    assert measured.service_cpu_seconds("user") == 0.0
