"""Benchmark of the redirect hot path, as ratios against a floor measured in the same run.

Starts a whole stack of its own on free ports (the same launchers as
``make dev``) and a bare FastAPI app beside it (loadtests/floor.py), then
measures, one after another:

1. closed loop (wrk): the floor and the full path through the gateway, hot
   link (answered from the gateway's redirect cache), three times each in
   turn; the link service alone, cache hit; the full path through a second
   gateway with that cache off (answered from the link service's read
   model), through a third with the read model off too (the link hop), and
   the hop's reference, the bare two-hop floor (loadtests/floor.py); the
   full path on cache misses (codes never followed, link cache flushed);
   link creation through the gateway, three runs;
2. open loop: a fixed offered rate of redirects through the gateway (its
   memory on; off, from the read model; off, through the link service),
   latency from each request's intended send time, and the floor and the
   bare two-hop floor (loadtests/floor.py: the link hop's path with none of
   the system on it) at the same rate, each target three times (the hop
   and its reference in turn), its bounds judged on the median run; the
   read model's path at lower rates too;
3. idle memory of the stack, and the seconds a warm start takes;
4. py-spy profiles: the gateway on the hot path, the gateway on the read
   model's path, and the gateway and the link service on the link hop.

The rate limiter is set out of the way; access logs stay as shipped.
Results go to stdout and to the ``bench`` section of ``docs/performance.md``.

    make bench
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import tempfile
import time
from pathlib import Path

import httpx
import redis

from infra.devstack.managed import ManagedProcess, free_port
from infra.devstack.procfs import stack_pss_bytes, stack_rss_bytes
from infra.devstack.stack import REPO_ROOT, SERVICES, Ports, start_stack, stop_stack
from infra.devstack.state import StateDir
from loadtests.accounts import Account, create_link, list_codes, open_account, visitor_headers
from loadtests.bench_run import BenchRun, Measured, median_run
from loadtests.docpage import write_section
from loadtests.floor import FLOOR_CODE
from loadtests.openloop_report import HOP_OPEN_LOOP, LINK_OPEN_LOOP, TWO_HOP_OPEN_LOOP
from loadtests.profile import profile_under_load, stolen_cpu_seconds
from loadtests.redirect_report import render
from loadtests.rows import FLOOR_ROW, Rows
from loadtests.sideprocs import start_floor, two_hop_floor, uncached_gateway
from loadtests.stackmetrics import cache_lookups
from loadtests.wrk import MAX_SECONDS, cycle_script, post_json_script, run_wrk

UNLIMITED = "100000000/minute"
PROFILES = REPO_ROOT / ".devstack/bench/profile"
# Runs of the floor and of row b each, in turn (Bench.measure_against_floor);
# of row d, one after another; of each open-loop target at the offered rate
# (the proxied path and its reference in turn), its bound judged on their
# median: one 10 s run's p99 is its hundred slowest requests, and on a
# shared machine it moved across a bound between two runs an hour apart.
ROUNDS = 3
HOT_ROW = "b. gateway (2 replicas), hot link (gateway's redirect cache), click recorded"
DIRECT_ROW = "a. link service alone, cache hit"
HOP_ROW = "b2. gateway (1 process), its memory off: the link service's read model (Redis)"
THROUGH_LINK_ROW = "b3. gateway (1 process) → link, memory and read model off, link cache hit"
CREATE_ROW = "d. create a link through the gateway (API key)"
# The proxied path and its reference are also offered these shares of the
# open loop's rate: how latency grows with the rate on this machine.
LOWER_RATES = (0.25, 0.5)
TWO_HOP_ROW = "b3's reference: bare two hops (aiohttp → redis-py GET, no framework)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help=f"per run, ≤ {MAX_SECONDS:g}")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rate", type=float, default=1000.0, help="open-loop redirects/s")
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "docs/performance.md")
    args = parser.parse_args()
    # The benchmark measures the hot path, not the rate limiter.
    for policy in ("REDIRECT", "CREATE", "CREATE_ANONYMOUS", "API"):
        os.environ[f"GATEWAY_RATELIMIT_{policy}"] = UNLIMITED
    seconds = min(max(round(args.seconds), 1), MAX_SECONDS)
    run = BenchRun(seconds, args.connections, args.threads, args.rate)
    ports = Ports.free()
    state = StateDir(Path(tempfile.mkdtemp(prefix="bench-redirect-", dir="/tmp")))
    began, stolen = time.monotonic(), stolen_cpu_seconds()
    started = time.monotonic()
    processes = start_stack(ports, state)
    run.cold_start = time.monotonic() - started
    stop_stack(processes, state)
    started = time.monotonic()
    processes = start_stack(ports, state)  # the database exists and is migrated: warm
    run.warm_start = time.monotonic() - started
    try:
        time.sleep(2)  # consumers join their groups: idle means settled
        run.idle_rss = {p.name: stack_rss_bytes([p.pid]) for p in processes}
        run.idle_pss = {p.name: stack_pss_bytes([p.pid]) for p in processes}
        Bench(run, ports, processes, state).measure()
    finally:
        stop_stack(processes, state)
    cores_time = (time.monotonic() - began) * (os.cpu_count() or 1)
    run.stolen_share = (stolen_cpu_seconds() - stolen) / cores_time
    text = render(run)
    write_section(args.report, "bench", text)
    print(text)
    # Kept when a run fails, for its logs; a finished run leaves nothing behind.
    state.delete()


class Bench(Rows):
    """The measurements of one run, against one stack."""

    def __init__(
        self, run: BenchRun, ports: Ports, processes: list[ManagedProcess], state: StateDir
    ) -> None:
        super().__init__(run, {p.name: p.pid for p in processes})
        self.ports = ports
        self.state = state
        self.gateway = f"http://127.0.0.1:{ports.gateway}"
        self.link = f"http://127.0.0.1:{ports.link}"
        # The processes whose click buffers a row may overflow: each gateway
        # replica asked on its own port, not whichever the shared one picks.
        replicas = [s.url(ports) for s in SERVICES if s.service == "gateway"]
        self.stack_publishers = [*replicas, self.link]
        self.publishers = self.stack_publishers

    def measure(self) -> None:
        port = free_port()
        floor = start_floor(port, self.state.log("floor"))
        self.floor_url = f"http://127.0.0.1:{port}/{FLOOR_CODE}"
        self.pids["floor"] = floor.pid  # its CPU is the row's, not the machine's others
        try:
            self.measure_rows()
        finally:
            floor.stop()
            del self.pids["floor"]

    def measure_rows(self) -> None:
        run = self.run
        with httpx.Client(base_url=self.gateway, timeout=30, trust_env=False) as http:
            owner = open_account(http, "bench")
            path = "/" + create_link(http, owner, "https://example.com/hot")
            http.get(path)  # in the link cache from now on
            hot = self.measure_against_floor(self.gateway + path)
            # Signed headers are valid for 30 s: made right before the run.
            direct = self.beside_floor(
                lambda: self.closed(DIRECT_ROW, self.link + path, headers=visitor_headers(path))
            )
            watched = {"gateway (row b, one of its two replicas)": self.pids["gateway"]}
            run.profiled_rate = self.profile(self.gateway + path, watched)
            hops = self.measure_link_hop(path)
            body = post_json_script('{"url": "https://example.com/created-by-bench"}')
            url = f"{self.gateway}/api/v1/links"
            runs = [
                self.beside_floor(
                    lambda: self.closed(CREATE_ROW, url, script=body, headers=owner.headers)
                )
                for _ in range(ROUNDS)
            ]
            create = median_run(runs)
            # A miss costs a Postgres query and a cache write on top of a hit: 3x
            # the link service's CPU when this was written. Making codes is slow
            # (row d), so make enough for misses at half the hit rate; should a
            # run use them all, it starts over and the note shows the hits.
            needed = math.ceil(hot.wrk.good_rate * run.seconds * 0.5)
            codes = self.fresh_codes(http, owner, path.lstrip("/"), needed, create.wrk.good_rate)
            cold = self.beside_floor(lambda: self.measure_misses(codes))
            run.scenarios = [direct, hot, *hops, cold, create]
            http.get(path)  # back in the cache after the flush
            for _ in range(ROUNDS):
                self.open_loop("gateway, hot link", self.gateway + path)

    def measure_against_floor(self, hot_url: str) -> Measured:
        """The floor and row b, in turn, ``ROUNDS`` times each; each row is its
        median run. On a shared machine the speed available drifts over a
        minute by more than the difference measured, so the two are measured
        close together, and more than once, rather than a row apart."""
        floors, hots = [], []
        for _ in range(ROUNDS):
            floors.append(self.closed(FLOOR_ROW, self.floor_url))
            hots.append(self.closed(HOT_ROW, hot_url))
        self.open_loop("floor", self.floor_url)
        self.run.floor = median_run(floors)
        return median_run(hots)

    def measure_link_hop(self, path: str) -> list[Measured]:
        """Row b without the gateway's memory: a second gateway with it off,
        every redirect answered from the link service's read model (row b2);
        a third with the read model off too, every redirect through the link
        service (its cache hit; row b3); and b3's reference, the bare two-hop
        floor. Each closed loop beside a floor run; then in open loop b2 at
        each rate, and b3 and its reference in turn: a burst of steal on the
        host falls on both rather than on one."""
        with (
            uncached_gateway(self.ports, self.state.log("gateway-uncached")) as (shared, pid),
            uncached_gateway(
                self.ports,
                self.state.log("gateway-hop"),
                "gateway-hop",
                redirect_read_model_url="",
            ) as (through, hop_pid),
            two_hop_floor(self.ports, self.state) as (bare, bare_pids),
        ):
            stack_gateway = self.pids["gateway"]
            self.pids.update(bare_pids)
            read_model, hop, reference = shared + path, through + path, f"{bare}/{FLOOR_CODE}"
            try:
                # Each row's gateway is the gateway column; the stack's idles.
                self.use_gateway(shared, pid)
                measured = [self.beside_floor(lambda: self.closed(HOP_ROW, read_model))]
                self.use_gateway(through, hop_pid)
                measured.append(self.beside_floor(lambda: self.closed(THROUGH_LINK_ROW, hop)))
                measured.append(self.beside_floor(lambda: self.closed(TWO_HOP_ROW, reference)))
                self.use_gateway(shared, pid)
                for share in [1.0] * ROUNDS + list(LOWER_RATES):
                    self.open_loop(HOP_OPEN_LOOP, read_model, share)
                watched = {"gateway (row b2)": pid}
                self.run.profiled_hop_rate = self.profile(read_model, watched)
                self.use_gateway(through, hop_pid)
                for _ in range(ROUNDS):
                    self.open_loop(LINK_OPEN_LOOP, hop)
                    self.open_loop(TWO_HOP_OPEN_LOOP, reference)
                watched = {"gateway (row b3)": hop_pid, "link (row b3)": self.pids["link"]}
                self.run.profiled_link_rate = self.profile(hop, watched)
            finally:
                self.pids["gateway"] = stack_gateway
                for name in bare_pids:
                    del self.pids[name]
                self.publishers = self.stack_publishers
        return measured

    def use_gateway(self, url: str, pid: int) -> None:
        """The gateway whose CPU and click buffer the next rows count."""
        self.pids["gateway"] = pid
        self.publishers = [url, self.link]

    def fresh_codes(
        self, http: httpx.Client, owner: Account, hot: str, needed: int, create_rate: float
    ) -> list[str]:
        """Codes never followed: those row d made, and more made the same way if short."""
        codes = [c for c in list_codes(http, owner) if c != hot]
        body = post_json_script('{"url": "https://example.com/for-the-miss-row"}')
        while len(codes) < needed:
            seconds = min(MAX_SECONDS, (needed - len(codes)) / max(create_rate, 1.0) + 1)
            url = f"{self.gateway}/api/v1/links"
            run_wrk(url, seconds=seconds, script=body, headers=owner.headers)
            codes = [c for c in list_codes(http, owner) if c != hot]
        return codes

    def measure_misses(self, codes: list[str]) -> Measured:
        """Each code followed once, with the link cache empty; checked in the link service."""
        codes_file = self.state.root / "codes.txt"
        codes_file.write_text("\n".join(codes) + "\n")
        before = cache_lookups(self.link)
        with redis.Redis(port=self.ports.redis, db=0) as cache:
            cache.flushdb()  # db 0: the link cache, so nothing is warm
        script = cycle_script(codes_file, self.run.threads)
        measured = self.closed(
            "c. gateway → link, cache miss (Postgres)", self.gateway, script=script
        )
        after = cache_lookups(self.link)
        lookups = sum(after.values()) - sum(before.values())
        missed = after.get("miss", 0.0) - before.get("miss", 0.0)
        note = f"{missed:,.0f} of {lookups:,.0f} lookups missed the cache ({len(codes):,} codes)"
        return dataclasses.replace(measured, note=note)

    def profile(self, url: str, watched: dict[str, int]) -> float:
        """py-spy on ``watched`` during one more wrk run on ``url``; its rate.
        The profiles join the run's, by name."""
        self.settle()
        run = self.run
        rate, profiles = profile_under_load(
            url, watched, PROFILES, seconds=run.seconds, load=(run.connections, run.threads)
        )
        run.profiles.update(profiles)
        return rate


if __name__ == "__main__":
    main()
