"""What one run of loadtests/bench_redirect.py measured: closed-loop rows,
open-loop runs, memory, start-up and profiles (rendered by redirect_report)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from infra.provenance import commit
from loadtests.openloop import OpenLoopResult
from loadtests.profile import ProcessProfile
from loadtests.wrk import WrkResult

__all__ = ["BenchRun", "Measured", "OpenLoopRun", "median_run", "upper_median"]


@dataclass(frozen=True)
class Measured:
    """One closed-loop scenario and the CPU each process spent during it."""

    label: str
    wrk: WrkResult
    cpu_seconds: dict[str, float]
    note: str = ""
    others_cores: float = 0.0  # cores the rest of the machine used during the run
    # The floor's rate in the run just before this one (loadtests/rows.py);
    # None for the floor itself and row b, which alternate with it.
    floor_rate: float | None = None

    def service_cpu_seconds(self, service: str) -> float:
        """CPU of every replica of ``service``: ``gateway`` and ``gateway-2``, say."""
        replica = re.compile(rf"{re.escape(service)}(-\d+)?")
        return sum(spent for name, spent in self.cpu_seconds.items() if replica.fullmatch(name))

    def ratio(self, floor: Measured) -> float:
        """This run's rate over the floor beside it, or over ``floor`` if none."""
        return self.wrk.good_rate / (self.floor_rate or floor.wrk.good_rate)


def median_run(runs: list[Measured]) -> Measured:
    """The run with the median rate (the median ratio, for runs each beside a floor)."""

    def key(measured: Measured) -> float:
        return measured.wrk.good_rate / (measured.floor_rate or 1.0)

    return sorted(runs, key=key)[len(runs) // 2]


def upper_median(values: list[float]) -> float:
    """The middle value; of an even count, the greater of the two middle ones
    (a bound judged on it is never met by averaging a good run with a bad one)."""
    return sorted(values)[len(values) // 2]


@dataclass
class OpenLoopRun:
    """One open-loop run, and the CPU each process spent during it."""

    label: str
    result: OpenLoopResult
    cpu_seconds: dict[str, float]
    machine_cores: float  # the whole machine, the generator included
    stolen_cores: float = 0.0  # taken by the hypervisor for its other guests

    def ms_per_request(self, name: str) -> float:
        return 1000 * self.cpu_seconds.get(name, 0.0) / max(self.result.answered, 1)


@dataclass
class BenchRun:
    seconds: float
    connections: int
    threads: int
    offered_rate: float
    cold_start: float = 0.0
    warm_start: float = 0.0
    idle_rss: dict[str, int] = field(default_factory=dict)
    idle_pss: dict[str, int] = field(default_factory=dict)
    floor: Measured | None = None
    scenarios: list[Measured] = field(default_factory=list)
    # At the offered rate: the targets' rows several times each, in turn.
    open_loop: list[OpenLoopRun] = field(default_factory=list)
    # The proxied path and its reference at fractions of ``offered_rate``.
    lower_rates: list[OpenLoopRun] = field(default_factory=list)
    profiles: dict[str, ProcessProfile] = field(default_factory=dict)
    profiled_rate: float = 0.0
    profiled_hop_rate: float = 0.0
    profiled_link_rate: float = 0.0
    background_cores: float = 0.0  # the most the rest of the machine used between rows
    stolen_share: float = 0.0  # of the cores' time over the whole run, taken by the hypervisor
    commit: str = field(default_factory=commit)  # of the code the stack loads

    def ratio(self, measured: Measured) -> float:
        assert self.floor is not None
        return measured.ratio(self.floor)

    def open_loop_runs(self) -> dict[str, list[OpenLoopRun]]:
        """The runs at the offered rate, by target, in the order they ran."""
        runs: dict[str, list[OpenLoopRun]] = {}
        for o in self.open_loop:
            runs.setdefault(o.label, []).append(o)
        return runs
