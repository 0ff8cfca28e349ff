"""The ``bench`` section of docs/performance.md, from one run of loadtests/bench_redirect.py."""

from __future__ import annotations

from datetime import UTC, datetime

from infra.provenance import machine
from loadtests.bench_run import BenchRun
from loadtests.openloop_report import (
    by_rate,
    open_loop_cpu,
    open_loop_table,
    open_loop_targets,
    process_order,
)
from loadtests.profile import RATE_HZ, ProcessProfile

__all__ = ["render"]

MB = 1024 * 1024
# The goals (issue #17), as ratios or bounds that mean the same on any machine:
# row label prefix -> the least ratio to the floor.
FLOOR_RATIO_TARGETS = {
    "b.": 1.5,  # the gateway's memory
    "b2.": 0.5,  # the proxied path: gateway -> the link service's read model (Redis)
    "c.": 0.2,  # a cache miss (Postgres)
    "d.": 0.1,  # creation through the gateway
}
# Of the whole stack, as PSS: every page once, however many processes map it
# (docs/adr/0019-the-local-gateway-runs-two-replicas.md).
IDLE_MEMORY_TARGET_MB = 800
WARM_START_TARGET_S = 10.0


def _met(ok: bool | None) -> str:
    if ok is None:
        return "shown, not a goal"
    return "met" if ok else "**NOT met**"


def _throughput(run: BenchRun) -> str:
    assert run.floor is not None
    rows = [
        "| scenario | req/s | p50 | p99 | x floor | floor beside | not 2xx/3xx | others | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for m in [run.floor, *run.scenarios]:
        w = m.wrk
        beside = f"{m.floor_rate:,.0f}" if m.floor_rate else "(median)"
        rows.append(
            f"| {m.label} | {w.good_rate:,.0f} | {w.p50_ms:.1f} ms | {w.p99_ms:.1f} ms "
            f"| {run.ratio(m):.2f} | {beside} | {w.bad_status + w.socket_errors} "
            f"| {m.others_cores:.2f} | {m.note} |"
        )
    return "\n".join(rows)


def _cpu(run: BenchRun) -> str:
    assert run.floor is not None
    measured = [run.floor, *run.scenarios]
    names = sorted({n for m in measured for n in m.cpu_seconds}, key=process_order)
    rows = [
        "| scenario | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for m in measured:
        per_request = [1000 * m.cpu_seconds.get(n, 0.0) / max(m.wrk.requests, 1) for n in names]
        rows.append(f"| {m.label} | " + " | ".join(f"{v:.2f}" for v in per_request) + " |")
    return "\n".join(rows)


def _profile(name: str, profile: ProcessProfile) -> str:
    ours = "\n".join(f"| {pct:.0f}% | `{label}` |" for label, pct in profile.ours)
    layers = "\n".join(f"| {pct:.0f}% | {label} |" for label, pct in profile.layers)
    return f"""**{name}** ({profile.samples:,} samples on CPU)

| inclusive | our function |
|---:|---|
{ours}

| exclusive | package (innermost frame) |
|---:|---|
{layers}
"""


def _targets(run: BenchRun) -> str:
    rows: list[tuple[str, str, str, bool | None]] = []
    for m in run.scenarios:
        goal = next((g for p, g in FLOOR_RATIO_TARGETS.items() if m.label.startswith(p)), None)
        if goal is not None:
            got = run.ratio(m)
            rows.append(
                (m.label, f"≥ {goal:.1f}x floor", f"{_ratio(got, goal)} floor", got >= goal)
            )
    rows += open_loop_targets(run)
    pss_mb = sum(run.idle_pss.values()) / MB
    rows += [
        ("idle memory of the whole stack (PSS)", f"≤ {IDLE_MEMORY_TARGET_MB} MB",
         f"{pss_mb:,.0f} MB", pss_mb <= IDLE_MEMORY_TARGET_MB),
        ("warm start (database already migrated)", f"≤ {WARM_START_TARGET_S:.0f} s",
         f"{run.warm_start:.1f} s", run.warm_start <= WARM_START_TARGET_S),
    ]  # fmt: skip
    lines = ["| target | goal | measured | |", "|---|---|---|---|"]
    lines += [f"| {what} | {goal} | {got} | {_met(ok)} |" for what, goal, got, ok in rows]
    return "\n".join(lines)


def _ratio(got: float, goal: float) -> str:
    """Two decimals, or three where two would round a miss up to its goal
    (0.0992 of a 0.1 goal reads 0.099x, not 0.10x beside "NOT met")."""
    shown = f"{got:.2f}x"
    if got < goal and float(shown[:-1]) >= goal:
        shown = f"{got:.3f}x"
    return shown


def _memory(sizes: dict[str, int]) -> str:
    parts = ", ".join(
        f"{name} {size / MB:,.0f}"
        for name, size in sorted(sizes.items(), key=lambda item: -item[1])
    )
    return f"{sum(sizes.values()) / MB:,.0f} MB in all ({parts}; MB)"


def render(run: BenchRun) -> str:
    """The section's Markdown."""
    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    profiles = "\n".join(_profile(name, p) for name, p in run.profiles.items())
    return f"""## The redirect hot path (`make bench`)

Machine: {machine()}; commit {run.commit}; {when}. The load generator,
the floor, every service, Postgres, Redis and the broker share these cores,
so compare the ratios, not the rates, with another machine. Other processes
on the machine used up to {run.background_cores:.2f} cores between rows
(near 0 on a quiet machine; more means noisier figures). The hypervisor
took {run.stolen_share:.0%} of the cores' time over the run for its other
guests ("steal"; 0 % on a machine of one's own).

Closed loop: wrk, {run.connections} connections, {run.threads} threads,
{run.seconds:.0f} s per run. Every ratio compares runs made back to back,
since the speed a shared machine gives drifts within a run by more than
the differences measured: the floor and row b three runs each, in turn
(floor, b, floor, b, ...), each showing its median run; every other row
runs right after a floor run of its own ("floor beside", its ratio's
base), and row d three times so, its median ratio shown (one slow stretch
moved a single run of it by a third).
The floor is a bare FastAPI app on uvicorn (one worker, no access log)
answering 302 from a dict (loadtests/floor.py). Row b goes through the
gateway as every deployment runs it, two replicas (here on one port, the
kernel spreading connections over them; ADR 0019), each checking the rate
limit (shared through Redis, ADR 0010), sending click events and writing
its access log; row b2 through one gateway
process with its memory off, answering from the link service's read model
in Redis (ADR 0022: what every redirect the gateway does not hold in
memory takes); row b3 through one more gateway process with the read
model off too, in front of the one link service process (the link hop:
each link's first visit, and every visit of a visit-limited link).
Right after b3, its reference: the bare two-hop floor, a plain ASGI app
passing on (with aiohttp) the answers of another that looks the code up
in Redis (redis-py), on the same uvicorn: b3's hops and Redis GET with
none of the system on them (no framework, middleware, log, metrics,
click or batching; loadtests/floor.py).
Access logs as shipped:
one line for every request, in the gateway and in the services.
req/s counts only the answers asked for (302, or 201 for creation);
"not 2xx/3xx" counts the rest. "others": cores used during the row by
processes outside the benchmark (another test run on a shared machine); a
row with a high figure ran on less than the whole machine.

{_throughput(run)}

### Targets

{_targets(run)}

### Open loop (latency from the intended send time)

Requests due at a fixed rate whatever the server does, on {run.connections}
keep-alive connections (loadtests/openloop.py); a request finding every
connection busy waits, and that wait is part of its latency. "Missed slot":
written more than 2 ms after its due time. An unfinished request counts with
the time it had waited at the cut-off (5 s after the last was due), so with
unfinished requests the tail figures are lower bounds. The floor row is the
generator and machine's own noise at the same rate; the bare two hops, what
this machine gives the link hop's path, run in turn with that path (a burst
of steal then falls on both, not on one). Each target
runs three times and every run is shown; its bounds are judged on the median
of the three (one 10 s run's p99 is its hundred slowest requests: a pause of
the host moves it across a bound from one run to the next, as the closed
loop's rows, each a median of three runs, are not).

{open_loop_table(run.open_loop)}

CPU per request at the offered rate, in milliseconds, by process (as in
"Where the time goes" below, over the open-loop runs; the median of each
target's runs). At a low rate little
is amortised: a lookup batch carries one visit, a record batch few clicks,
and each wake-up of a process costs CPU of its own ("machine busy" counts
every process, the generator included; "stolen", the time the hypervisor
gave the machine's cores to other guests while it wanted them: latency
no code here can win back):

{open_loop_cpu(run)}

The read model's path (row b2) at lower offered rates too (each on a
settled stack, as above): how the tail grows with the rate on this machine.

{open_loop_table(by_rate(run))}

### Memory and start-up

- Idle memory after start-up, before any load, as PSS (each page shared
  by n processes counted 1/n in each; the budget's measure):
  {_memory(run.idle_pss)}.
- The same as RSS, which counts a shared page (Postgres's shared buffers)
  once in every process that maps it: {_memory(run.idle_rss)}.
- Warm start (`start_stack` on an already-migrated database, second start):
  {run.warm_start:.1f} s. Cold start of the same run (new database, migrations):
  {run.cold_start:.1f} s.

### Where the time goes (measured)

CPU per request, in milliseconds, by process (user + system time of each
process and its children over the row's run, divided by its requests):

{_cpu(run)}

py-spy, {RATE_HZ} samples/s for {run.seconds:.0f} s each: the gateway while
wrk drove row b (its memory), the gateway with its memory off while wrk
drove row b2 (the proxied path: what is left on it), and the gateway and
the link service while wrk drove row b3 (the link hop). Rates while
sampled: {run.profiled_rate:,.0f}, {run.profiled_hop_rate:,.0f} and
{run.profiled_link_rate:,.0f} req/s (py-spy stops a process for each sample).
Inclusive: share of the process's samples with that function on the stack.
Exclusive: share whose innermost Python frame is in that package. Raw
stacks: `.devstack/bench/profile/`.

{profiles}"""
