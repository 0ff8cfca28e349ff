"""One benchmark row: a wrk run, the CPU each process spent on it, and
the floor measured beside it.

Used by ``make bench`` (loadtests/bench_redirect.py). A row is measured on
a settled stack (the work the previous row left behind is done), and what
the rest of the machine used meanwhile is kept with it. ``beside_floor``
runs the floor just before a row and keeps its rate with the row: on a
shared machine the speed available drifts within a run by more than the
differences measured (../shared/PERFORMANCE.md: compare only figures
measured back to back), so each row is a ratio to the floor next to it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping

from loadtests.bench_run import BenchRun, Measured, OpenLoopRun
from loadtests.openloop import run_open_loop
from loadtests.profile import (
    cpu_seconds,
    machine_cpu_seconds,
    own_cpu_seconds,
    stolen_cpu_seconds,
)
from loadtests.stackmetrics import dropped_clicks
from loadtests.wrk import run_wrk

__all__ = ["FLOOR_ROW", "IDLE_CPU", "Rows"]

FLOOR_ROW = "floor: bare FastAPI, 302 from a dict"
# Cores the whole stack may use and still count as idle: its consumers and
# relays poll even when nothing happens.
IDLE_CPU = 0.15


class Rows:
    def __init__(self, run: BenchRun, pids: dict[str, int]) -> None:
        self.run = run
        self.pids = pids
        # The services whose click buffers a row may overflow (their URLs).
        self.publishers: list[str] = []
        self.floor_url = ""

    def beside_floor(self, row: Callable[[], Measured]) -> Measured:
        """A floor run, then ``row``; the row keeps the floor's rate, its ratio's base."""
        floor = self.closed(FLOOR_ROW, self.floor_url)
        return dataclasses.replace(row(), floor_rate=floor.wrk.good_rate)

    def closed(
        self,
        label: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        script: str = "",
        note: str = "",
    ) -> Measured:
        """One wrk run, with the CPU each process of the stack spent during it.

        Also what the rest of the machine took meanwhile: the machine's busy
        time less the stack's, wrk's and this process's. On a shared machine
        that is CPU the row did not get.
        """
        self.settle()
        dropped = dropped_clicks(self.publishers)
        machine, mine, before = machine_cpu_seconds(), own_cpu_seconds(), cpu_seconds(self.pids)
        result = run_wrk(
            url,
            seconds=self.run.seconds,
            connections=self.run.connections,
            threads=self.run.threads,
            headers=headers,
            script=script,
        )
        after = cpu_seconds(self.pids)
        spent = {n: after[n] - before[n] for n in self.pids}
        machine = machine_cpu_seconds() - machine
        others = machine - sum(spent.values()) - (own_cpu_seconds() - mine)
        dropped = dropped_clicks(self.publishers) - dropped
        if dropped:
            note = "; ".join(filter(None, [note, f"**{dropped:,.0f} click events dropped**"]))
        print(f"{label}: {result.good_rate:,.0f} req/s, p50 {result.p50_ms:.1f} ms")
        return Measured(label, result, spent, note, max(0.0, others) / result.seconds)

    def open_loop(self, label: str, url: str, share: float = 1.0) -> OpenLoopRun:
        """An open-loop run at ``share`` of the bench's offered rate on a settled
        stack, with the CPU each process and the whole machine spent on it; kept
        in the run (with the lower rates' runs, if ``share`` < 1)."""
        self.settle()
        machine, stolen = machine_cpu_seconds(), stolen_cpu_seconds()
        before = cpu_seconds(self.pids)
        rate = self.run.offered_rate * share
        result = run_open_loop(url, rate=rate, seconds=self.run.seconds)
        after = cpu_seconds(self.pids)
        stolen = (stolen_cpu_seconds() - stolen) / result.seconds
        busy = (machine_cpu_seconds() - machine) / result.seconds - stolen
        spent = {n: after[n] - before[n] for n in self.pids}
        measured = OpenLoopRun(label, result, spent, busy, stolen)
        (self.run.open_loop if share >= 1.0 else self.run.lower_rates).append(measured)
        p99 = result.percentile(99)
        print(f"open loop, {label} at {rate:,.0f}/s: p99 {p99:,.1f} ms, {busy:.2f} cores busy")
        return measured

    def settle(self, limit: float = 15.0) -> None:
        """Wait until the stack is idle, so work a run left behind is not charged to the next.

        Work outlives a run: a burst of clicks still being counted, an outbox
        still being relayed, requests the gateway accepted before the client
        went away. Also notes what the rest of the machine uses meanwhile.
        """
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            machine, stack = machine_cpu_seconds(), sum(cpu_seconds(self.pids).values())
            time.sleep(0.5)
            stack = (sum(cpu_seconds(self.pids).values()) - stack) / 0.5
            others = (machine_cpu_seconds() - machine) / 0.5 - stack
            self.run.background_cores = max(self.run.background_cores, others)
            if stack < IDLE_CPU:
                return
        print(f"the stack was still busy after {limit:.0f} s; measuring anyway")
