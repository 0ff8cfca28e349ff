"""Where a process spends its CPU under load: py-spy samples and /proc counters.

``record`` samples running services from outside (py-spy reads their memory
through ptrace; nothing in the services changes), ``summarize`` turns the
collapsed stacks into the two views ``docs/performance.md`` shows: the share
of samples inside each of our own functions (inclusive), and the share
spent in each library's own code (exclusive, by the innermost frame).
``cpu_seconds`` reads what the kernel counted, the check on both.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from infra.devstack.procfs import descendants
from loadtests.wrk import run_wrk

__all__ = [
    "RATE_HZ",
    "ProcessProfile",
    "cpu_seconds",
    "machine_cpu_seconds",
    "own_cpu_seconds",
    "profile_under_load",
    "record",
    "stolen_cpu_seconds",
    "summarize",
]

RATE_HZ: Final = 50
"""py-spy stops the process for each sample: at 100/s the gateway served ~60% fewer redirects."""
_FRAME: Final = re.compile(r"^(?P<function>.*) \((?P<file>[^():]*)(?::\d+)?\)$")
# Worker threads blocked on a lock are sampled as busy by py-spy's idle
# heuristic; their innermost frame is in these files.
_WAITING: Final = ("threading.py", "queue.py")
# On every stack of the main thread: where the process starts, not where it works.
_ENTRY: Final = ("__main__.py", "services/chassis/server.py", "<frozen runpy>")
# The innermost Python frame is the loop's run call while uvloop runs its own C
# code: polling, socket reads and writes, callbacks not yet in Python.
_NATIVE_LOOP: Final = "asyncio/runners.py"


@dataclass(frozen=True)
class ProcessProfile:
    """One process's samples: ``ours`` inclusive by function, ``layers`` exclusive by package."""

    samples: int
    ours: list[tuple[str, float]]
    layers: list[tuple[str, float]]


def record(pids: Mapping[str, int], seconds: float, out: Path) -> list[subprocess.Popen[bytes]]:
    """Start one py-spy per process for ``seconds``; each writes ``out/<name>.txt``."""
    binary = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if binary is None:
        raise RuntimeError("py-spy not found (uv sync installs it with the dev group)")
    out.mkdir(parents=True, exist_ok=True)
    # Not --nonblocking: reading a running process's stack without stopping it
    # races with it, and a quarter of the samples came back cut short.
    argv = [binary, "record", "--rate", str(RATE_HZ), "--format", "raw", "--function"]
    argv += ["--duration", str(round(seconds))]
    return [
        subprocess.Popen(  # noqa: S603 - our own arguments
            [*argv, "--pid", str(pid), "-o", str(out / f"{name}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]


def profile_under_load(
    url: str, watched: Mapping[str, int], out: Path, *, seconds: float, load: tuple[int, int]
) -> tuple[float, dict[str, ProcessProfile]]:
    """py-spy on ``watched`` during one wrk run on ``url`` with ``load`` (connections,
    threads): its rate, and each process's profile (raw stacks in ``out``)."""
    spies = record(watched, seconds, out)
    time.sleep(0.5)  # attached before the load starts
    connections, threads = load
    result = run_wrk(url, seconds=seconds, connections=connections, threads=threads)
    for spy in spies:
        spy.wait(timeout=60)
    return result.good_rate, {name: summarize(out / f"{name}.txt") for name in watched}


def summarize(collapsed: Path, top: int = 10) -> ProcessProfile:
    """Read py-spy's raw output (``frame;frame;... count`` per line)."""
    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_FRAME.match(frame) for frame in stack.split(";")]
        parsed = [(m["function"], m["file"]) for m in frames if m is not None]
        if not parsed or parsed[-1][1].endswith(_WAITING):
            continue
        n = int(count)
        samples += n
        exclusive[_layer(parsed[-1][1])] += n
        for label in {f"{fn} ({file})" for fn, file in parsed if _ours(file)}:
            inclusive[label] += n
    share = 100 / max(samples, 1)
    return ProcessProfile(
        samples=samples,
        ours=[(label, n * share) for label, n in inclusive.most_common(top)],
        layers=[(label, n * share) for label, n in exclusive.most_common(top)],
    )


def _ours(file: str) -> bool:
    return file.startswith(("gateway/", "services/")) and not file.endswith(_ENTRY)


def _layer(file: str) -> str:
    if file == _NATIVE_LOOP:
        return "uvloop, in C (I/O, polling)"
    parts = file.split("/")
    if parts[0] == "services" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0].removesuffix(".py")


def cpu_seconds(pids: Mapping[str, int]) -> dict[str, float]:
    """User plus system CPU used so far by each process and everything below it, alive or reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    return {
        name: sum(_cpu_ticks(p) for p in descendants([pid])) / tick for name, pid in pids.items()
    }


def _cpu_ticks(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = text[text.rindex(")") + 2 :].split()
    # Fields 14-17: its own user and system time, then that of children it has
    # reaped (a Postgres backend that served a connection and exited).
    return sum(int(f) for f in fields[11:15])


def machine_cpu_seconds() -> float:
    """CPU time all processes on the machine have used so far, and the hypervisor stole.

    Interrupt time is left out: the kernel's loopback networking for our own
    load is counted there, and in no process.
    """
    user, nice, system, steal = _machine_ticks()
    return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")


def stolen_cpu_seconds() -> float:
    """CPU time the hypervisor has so far given to others while this machine
    wanted it (a virtual machine's cores are shared with its neighbours)."""
    return _machine_ticks()[3] / os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int, int, int]:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = map(int, fields[:8])
    return user, nice, system, steal


def own_cpu_seconds() -> float:
    """CPU time of this process and of the children it has waited for (wrk)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
