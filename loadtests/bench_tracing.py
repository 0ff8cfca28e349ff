"""The cost of tracing on the redirect path: tracing off, sampling 1 %, sampling 100 %.

For each setting a stack of its own starts on free ports (the launchers of
``make dev``), configured only by ``OTEL_*`` variables in the environment
its processes inherit, and exports to a local OTLP/HTTP receiver that
accepts and discards (tests/otlp_receiver.py), standing in for a collector.
Each setting's row through the gateway (wrk, closed loop, hot link) comes
right after a run of the floor (loadtests/floor.py), and settings take turns
over several rounds: reported as the median ratio to its own floor, since
whole runs drift on a shared machine while back-to-back ratios do not.

Also measured in this process: what tracing-off code costs a redirect (the
``None`` check when a click is queued, the span look-up in each log line);
and, steadier than whole-stack rates on a shared machine, the tracing code
alone in CPU per request (loadtests/tracing_cost.py). Each part rewrites its
own section of the report (``stack``, ``in-process``).

    make bench-tracing
    python -m loadtests.bench_tracing --in-process-only   # ~1 core for 40 s
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import timeit
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from infra.devstack.managed import ManagedProcess, free_port
from infra.devstack.stack import REPO_ROOT, Ports, start_stack, stop_stack
from infra.devstack.state import StateDir
from infra.provenance import machine
from loadtests import tracing_cost
from loadtests.bench_redirect import UNLIMITED, Bench
from loadtests.bench_run import BenchRun, Measured
from loadtests.docpage import write_section
from loadtests.floor import FLOOR_CODE
from loadtests.sideprocs import start_floor
from loadtests.wrk import MAX_SECONDS
from services.chassis.tracing_kafka import message_context
from tests.otlp_receiver import OtlpReceiver

# Label, OTEL_TRACES_SAMPLER_ARG (None: no endpoint, so tracing is off).
SETTINGS: tuple[tuple[str, str | None], ...] = (("off", None), ("1 %", "0.01"), ("100 %", "1.0"))
_OTEL = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG")


@dataclass(frozen=True)
class Row:
    setting: str
    round: int
    floor: Measured
    gateway: Measured
    exports: int  # OTLP requests the receiver got during the gateway's run
    exported_bytes: int

    @property
    def ratio(self) -> float:
        return self.gateway.wrk.good_rate / self.floor.wrk.good_rate

    def cpu_ms(self, service: str) -> float:
        """CPU per redirect in the processes of ``service``, milliseconds."""
        spent = self.gateway.service_cpu_seconds(service)
        return 1000 * spent / max(self.gateway.wrk.requests, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help=f"per run, ≤ {MAX_SECONDS:g}")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "docs/performance-tracing.md")
    parser.add_argument("--in-process-only", action="store_true", help="no stacks, no wrk")
    args = parser.parse_args()
    if not args.report.exists():
        args.report.write_text(_HEADER)
    in_process = tracing_cost.render(tracing_cost.measure_all())
    write_section(args.report, "in-process", in_process)
    print(in_process)
    if args.in_process_only:
        return
    for policy in ("REDIRECT", "CREATE", "CREATE_ANONYMOUS", "API"):
        os.environ[f"GATEWAY_RATELIMIT_{policy}"] = UNLIMITED
    seconds = min(max(round(args.seconds), 1), MAX_SECONDS)
    run = BenchRun(seconds, args.connections, args.threads, offered_rate=0.0)
    state = StateDir(Path(tempfile.mkdtemp(prefix="bench-tracing-", dir="/tmp")))
    ports = Ports.free()
    rows: list[Row] = []
    with OtlpReceiver(keep=False) as receiver:
        port = free_port()
        floor = start_floor(port, state.log("floor"))
        url = f"http://127.0.0.1:{port}/{FLOOR_CODE}"
        try:
            for number in range(1, args.rounds + 1):
                for setting, ratio in SETTINGS:
                    rows.append(
                        measure(
                            run,
                            ports,
                            state,
                            receiver=receiver,
                            setting=(setting, ratio, number),
                            floor_run=(floor, url),
                        )
                    )
        finally:
            floor.stop()
    text = render(run, rows, off_path_costs())
    write_section(args.report, "stack", text)
    print(text)
    state.delete()


def measure(
    run: BenchRun,
    ports: Ports,
    state: StateDir,
    *,
    receiver: OtlpReceiver,
    setting: tuple[str, str | None, int],
    floor_run: tuple[ManagedProcess, str],
) -> Row:
    """One setting, one round: a stack with those variables, the floor, then the gateway."""
    label, ratio, number = setting
    floor_process, floor_url = floor_run
    for name in _OTEL:
        os.environ.pop(name, None)
    if ratio is not None:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
        os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        os.environ["OTEL_TRACES_SAMPLER_ARG"] = ratio
    processes = start_stack(ports, state)
    try:
        bench = Bench(run, ports, processes, state)
        bench.pids["floor"] = floor_process.pid  # its CPU is the runs', not the machine's others
        with httpx.Client(base_url=bench.gateway, timeout=30, trust_env=False) as http:
            created = http.post("/api/v1/links", json={"url": "https://example.com/traced"})
            created.raise_for_status()
            path = "/" + created.json()["code"]
            http.get(path)  # in the link cache from now on
        floor = bench.closed(f"floor ({label})", floor_url)
        exports, exported = receiver.requests, receiver.received_bytes
        gateway = bench.closed(f"gateway, tracing {label}", bench.gateway + path)
        exports, exported = receiver.requests - exports, receiver.received_bytes - exported
    finally:
        stop_stack(processes, state)
    return Row(label, number, floor, gateway, exports, exported)


def off_path_costs(number: int = 1_000_000) -> dict[str, float]:
    """Nanoseconds a call of what tracing-off code still runs, in this (untraced) process."""
    from opentelemetry import trace  # noqa: PLC0415 - as logging.py uses it

    def span_lookup() -> None:
        trace.get_current_span().get_span_context().trace_flags.sampled  # noqa: B018

    return {
        "queueing a click event (`message_context`)": _ns(
            lambda: message_context("clicks"), number
        ),
        "a log line's trace-id look-up": _ns(span_lookup, number),
    }


def _ns(call: object, number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=3)) / number * 1e9  # type: ignore[arg-type]


_HEADER = """# The cost of tracing on the redirect path

The sections between markers are written by `make bench-tracing`
(loadtests/bench_tracing.py); edit only outside them. How tracing is
configured and built: [observability-tracing.md](observability-tracing.md).
"""


def _per_redirect(off_costs: dict[str, float]) -> float:
    queue, lookup = off_costs.values()
    return queue + 2 * lookup


def render(run: BenchRun, rows: list[Row], off_costs: dict[str, float]) -> str:
    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    off = statistics.median(r.ratio for r in rows if r.setting == "off")
    summary = [
        "| tracing | x floor (median) | vs off | gateway req/s (median) | p99 | "
        "CPU/redirect gateway | link | OTLP exports | exported |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for setting, _ in SETTINGS:
        mine = [r for r in rows if r.setting == setting]
        ratio = statistics.median(r.ratio for r in mine)
        summary.append(
            f"| {setting} | {ratio:.3f} | {ratio / off - 1:+.1%} "
            f"| {statistics.median(r.gateway.wrk.good_rate for r in mine):,.0f} "
            f"| {statistics.median(r.gateway.wrk.p99_ms for r in mine):.1f} ms "
            f"| {statistics.median(r.cpu_ms('gateway') for r in mine):.3f} ms "
            f"| {statistics.median(r.cpu_ms('link') for r in mine):.3f} ms "
            f"| {sum(r.exports for r in mine):,} "
            f"| {sum(r.exported_bytes for r in mine) / 1024:,.0f} KiB |"
        )
    detail = [
        "| round | tracing | floor req/s | gateway req/s | x floor | p50 | p99 | not 2xx/3xx "
        "| others |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        w = r.gateway.wrk
        detail.append(
            f"| {r.round} | {r.setting} | {r.floor.wrk.good_rate:,.0f} | {w.good_rate:,.0f} "
            f"| {r.ratio:.3f} | {w.p50_ms:.1f} ms | {w.p99_ms:.1f} ms "
            f"| {w.bad_status + w.socket_errors} | {r.gateway.others_cores:.2f} |"
        )
    costs = "\n".join(f"- {what}: {ns:,.0f} ns" for what, ns in off_costs.items())
    return f"""## Through the whole stack

Machine: {machine()}; commit {run.commit}; {when}. Load generator, floor,
services, Postgres, Redis, broker and the OTLP receiver share these cores.

Each setting ran its own stack: "off" has no `OTEL_EXPORTER_OTLP_ENDPOINT`,
so no provider, no middleware, no spans; "1 %" and "100 %" set
`OTEL_TRACES_SAMPLER=parentbased_traceidratio` with `OTEL_TRACES_SAMPLER_ARG`
0.01 and 1.0 and export (batch span processor, OTLP/HTTP protobuf) to a
receiver that reads and discards each request. wrk, {run.connections}
connections, {run.threads} threads, {run.seconds:.0f} s per run, hot link
(cache hit, click event queued), access logs on as shipped. "x floor": the
gateway's redirects/s over the bare floor's, measured just before it; "vs
off": that ratio against tracing off. CPU per redirect: user + system time
of the process during the run, over its redirects.

{chr(10).join(summary)}

Every run:

{chr(10).join(detail)}

"others": cores used during the run by processes outside the benchmark.

### What tracing off still costs

Code that runs on every redirect whether or not tracing is on, timed in
this process (no provider), per call:

{costs}

A redirect queues one click event and writes two access lines (gateway and
link service), so tracing off costs it about
{_per_redirect(off_costs):,.0f} ns of CPU, against the
milliseconds of CPU per redirect above.
"""


if __name__ == "__main__":
    main()
