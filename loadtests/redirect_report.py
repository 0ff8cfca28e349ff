"""The ``bench`` section of docs/performance.md, from one run of loadtests/bench_redirect.py."""

from __future__ import annotations

from datetime import UTC, datetime

from infra.provenance import machine
from loadtests.bench_run import BenchRun, OpenLoopRun
from loadtests.openloop import OpenLoopResult
from loadtests.profile import RATE_HZ, ProcessProfile

__all__ = ["HOP_OPEN_LOOP", "TWO_HOP_OPEN_LOOP", "render"]

MB = 1024 * 1024
# The goals (issue #17), as ratios or bounds that mean the same on any machine:
# row label prefix -> the least ratio to the floor.
FLOOR_RATIO_TARGETS = {
    "b.": 1.5,  # the gateway's memory
    "b2.": 0.5,  # the proxied path: gateway -> link -> Redis
    "c.": 0.2,  # a cache miss (Postgres)
    "d.": 0.1,  # creation through the gateway
}
HOP_OPEN_LOOP = "gateway → link, gateway cache off"
TWO_HOP_OPEN_LOOP = "bare two hops (reference)"
# open-loop row label -> the most its p99 may be, in ms
OPEN_LOOP_P99_TARGETS_MS = {"gateway, hot link": 5.0, HOP_OPEN_LOOP: 10.0}
# open-loop row label -> the row measured beside it that shows what the
# machine gives the same path with nothing of the system on it
OPEN_LOOP_REFERENCES = {HOP_OPEN_LOOP: TWO_HOP_OPEN_LOOP}
MISSED_SLOTS_TARGET = 0.01  # requests sent more than 2 ms late, at most this share
# Of the whole stack, as PSS: every page once, however many processes map it
# (docs/adr/0019-the-local-gateway-runs-two-replicas.md).
IDLE_MEMORY_TARGET_MB = 800
WARM_START_TARGET_S = 10.0


def _met(ok: bool) -> str:
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


def _by_rate(run: BenchRun) -> list[OpenLoopRun]:
    """The proxied path and its reference at every rate offered, rate by rate."""
    labels = [HOP_OPEN_LOOP, TWO_HOP_OPEN_LOOP]
    runs = [o for o in [*run.open_loop, *run.lower_rates] if o.label in labels]
    return sorted(runs, key=lambda o: (o.result.rate, labels.index(o.label)))


def _open_loop(runs: list[OpenLoopRun]) -> str:
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


def _open_loop_cpu(run: BenchRun) -> str:
    names = sorted({n for o in run.open_loop for n in o.cpu_seconds}, key=_process_order)
    rows = ["| target | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for o in run.open_loop:
        cells = " | ".join(f"{o.ms_per_request(n):.2f}" for n in names)
        rows.append(f"| {o.label} | {cells} |")
    return "\n".join(rows)


def _cpu(run: BenchRun) -> str:
    assert run.floor is not None
    measured = [run.floor, *run.scenarios]
    names = sorted({n for m in measured for n in m.cpu_seconds}, key=_process_order)
    rows = [
        "| scenario | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for m in measured:
        per_request = [1000 * m.cpu_seconds.get(n, 0.0) / max(m.wrk.requests, 1) for n in names]
        rows.append(f"| {m.label} | " + " | ".join(f"{v:.2f}" for v in per_request) + " |")
    return "\n".join(rows)


def _process_order(name: str) -> int:
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
    rows: list[tuple[str, str, str, bool]] = []
    for m in run.scenarios:
        goal = next((g for p, g in FLOOR_RATIO_TARGETS.items() if m.label.startswith(p)), None)
        if goal is not None:
            got = run.ratio(m)
            rows.append((m.label, f"≥ {goal:.1f}x floor", f"{got:.2f}x floor", got >= goal))
    by_label = {o.label: o.result for o in run.open_loop}
    for label, result in by_label.items():
        bound = OPEN_LOOP_P99_TARGETS_MS.get(label)
        if bound is None:
            continue
        p99, late = result.percentile(99), _late(result)
        p99_got, late_got = f"{p99:,.1f} ms", f"{late:.1%}"
        reference = by_label.get(OPEN_LOOP_REFERENCES.get(label, ""))
        if reference is not None:
            p99_got += f" (bare two hops: {reference.percentile(99):,.1f} ms)"
            late_got += f" (bare two hops: {_late(reference):.1%})"
        offered = f"{result.rate:,.0f}/s offered"
        rows.append((f"{label}: p99 at {offered}", f"≤ {bound:.0f} ms", p99_got, p99 <= bound))
        rows.append((f"{label}: sent > 2 ms late", f"≤ {MISSED_SLOTS_TARGET:.0%}",
                     late_got, late <= MISSED_SLOTS_TARGET))  # fmt: skip
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


def _late(result: OpenLoopResult) -> float:
    """The share of requests sent more than 2 ms after their due time."""
    return result.missed_slots / max(result.scheduled, 1)


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
process with its memory off, in front of the one link service process.
Right after b2, its reference: the bare two-hop floor, a plain ASGI app
passing on (with aiohttp) the answers of another that looks the code up
in Redis (redis-py), on the same uvicorn: b2's hops and Redis GET with
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
this machine gives the proxied path's hops, run in turn with that path,
rate by rate (a burst of steal then falls on both, not on one).

{_open_loop(run.open_loop)}

CPU per request at the offered rate, in milliseconds, by process (as in
"Where the time goes" below, over the open-loop run). At a low rate little
is amortised: a lookup batch carries one visit, a record batch few clicks,
and each wake-up of a process costs CPU of its own ("machine busy" counts
every process, the generator included; "stolen", the time the hypervisor
gave the machine's cores to other guests while it wanted them: latency
no code here can win back):

{_open_loop_cpu(run)}

The proxied path and its reference, the bare two hops, at lower offered
rates too (in turn, each on a settled stack, as above): how the tail grows
with the rate on this machine.

{_open_loop(_by_rate(run))}

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
wrk drove row b (its memory), then the gateway with its memory off and the
link service while wrk drove row b2 (the proxied path: what is left on it).
Rates while sampled: {run.profiled_rate:,.0f} and {run.profiled_hop_rate:,.0f}
req/s (py-spy stops a process for each sample). Inclusive: share of the
process's samples with that function on the stack. Exclusive: share whose
innermost Python frame is in that package. Raw stacks: `.devstack/bench/profile/`.

{profiles}"""
