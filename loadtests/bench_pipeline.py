"""Benchmark of the click pipeline: how fast clicks are counted, and how soon.

Starts a whole stack of its own on free ports (the same launchers as
``make dev``), then measures, in one run on this machine:

1. the redirect rate the system serves through the gateway, a 10-second
   burst at full speed (a hot link, each redirect publishing its click);
2. the drain time: from the end of that burst until the last of its clicks
   is visible in the stats API;
3. the counting rate of the analytics service alone: a backlog of events
   put on the ``clicks`` topic while it is stopped, counted after a restart.

The goal (issue 4): the pipeline keeps up with the redirect rate, and the
backlog of a 10-second burst is drained within 2 seconds. Webhooks are on
(issue 18): the hot link's owner has an endpoint for ``link.clicked``,
served by a verifying receiver on 127.0.0.1, so the burst's clicks are
also owed and delivered while analytics counts them; the report says when
the last one arrived and how many clicks a delivery carried. Results go to
stdout and to ``docs/performance-pipeline.md``.

    make bench-pipeline
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import httpx
from aiokafka import AIOKafkaProducer

from chaos.receiver import Receiver
from infra.devstack.processes import ManagedProcess, free_port, start_python
from infra.devstack.stack import REPO_ROOT, SERVICES, Ports, service_env, start_stack, stop_stack
from infra.devstack.state import StateDir
from infra.provenance import commit, machine
from loadtests.accounts import open_account
from services.chassis.events import CLICKS_TOPIC, LinkClicked

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"


async def burst(url: str, seconds: float, concurrency: int) -> int:
    """Follow ``url`` as fast as the system answers for ``seconds``; redirects served."""
    served = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers={"user-agent": BROWSER}) as http:

        async def worker() -> None:
            nonlocal served
            while time.monotonic() < deadline:
                async with http.get(url, allow_redirects=False) as response:
                    if 300 <= response.status < 400:
                        served += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return served


def counted(http: httpx.Client, code: str, headers: dict[str, str] | None = None) -> int:
    response = http.get(f"/api/v1/links/{code}/stats", headers=headers)
    if response.status_code != 200:
        return -1
    totals = response.json()["totals"]
    return int(totals["clicks"]) + int(totals["bot_clicks"])


def wait_for_count(
    http: httpx.Client,
    code: str,
    expected: int,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> float:
    """Seconds until the stats of ``code`` (its owner's, if ``headers`` say who)
    show ``expected`` clicks (polled every 20 ms)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if counted(http, code, headers) >= expected:
            return time.monotonic() - started
        time.sleep(0.02)
    raise TimeoutError(f"{code}: {counted(http, code)} of {expected} counted after {timeout} s")


async def produce_backlog(bootstrap: str, code: str, events: int) -> float:
    """Put ``events`` clicks of ``code`` on the topic; the seconds it took."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    started = time.monotonic()
    try:
        futures = []
        for _ in range(events):
            event = LinkClicked(
                event_id=uuid.uuid4().hex,
                code=code,
                occurred_at=datetime.now(UTC),
                referrer=None,
                user_agent=BROWSER,
                ip_hash=uuid.uuid4().hex,
                request_id=None,
            )
            futures.append(await producer.send(CLICKS_TOPIC, event.to_json(), key=event.key()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.monotonic() - started


def restart(processes: list[ManagedProcess], name: str, ports: Ports, state: StateDir) -> None:
    process = next(p for p in processes if p.name == name)
    process.stop()
    spec = next(s for s in SERVICES if s.name == name)
    env = service_env(ports)[name]
    url = f"http://127.0.0.1:{getattr(ports, name)}/readyz"
    fresh = start_python(name, ["-m", spec.module, *spec.serve], env, state.log(name), url)
    processes[processes.index(process)] = fresh


def webhook_receiver(http: httpx.Client) -> tuple[Receiver, str]:
    """A receiver on 127.0.0.1 behind a new user's ``link.clicked`` endpoint; (it, the API key)."""
    account = open_account(http, "bench-pipeline")
    port = free_port()
    endpoint = http.post(
        "/api/v1/webhooks",
        json={"url": f"http://127.0.0.1:{port}/hooks", "event_types": ["link.clicked"]},
        headers={"x-api-key": account.api_key},
    )
    endpoint.raise_for_status()
    receiver = Receiver(port, endpoint.json()["secret"])
    receiver.up()
    return receiver, account.api_key


def clicks_delivered(receiver: Receiver) -> int:
    return len(receiver.ledger.first)


def wait_until(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the webhook receiver did not get every click in time")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "docs/performance-pipeline.md")
    args = parser.parse_args()
    # The benchmark measures the pipeline, not the rate limiter.
    os.environ["GATEWAY_RATELIMIT_REDIRECT"] = "100000000/minute"
    os.environ["GATEWAY_ACCESS_LOG"] = os.environ["LINK_ACCESS_LOG"] = "false"
    ports = Ports.free()
    state = StateDir(Path(tempfile.mkdtemp(prefix="bench-pipeline-", dir="/tmp")))
    processes = start_stack(ports, state)
    try:
        gateway = f"http://127.0.0.1:{ports.gateway}"
        with httpx.Client(base_url=gateway, timeout=10) as http:
            receiver, key = webhook_receiver(http)
            owned = {"x-api-key": key}
            link = http.post("/api/v1/links", json={"url": "https://example.com/b"}, headers=owned)
            code = link.json()["code"]
            http.get(f"/{code}")  # warm the caches and the consumer groups
            wait_for_count(http, code, 1, timeout=60, headers=owned)
            wait_until(lambda: clicks_delivered(receiver) >= 1, timeout=60)
            served = asyncio.run(burst(f"{gateway}/{code}", args.seconds, args.concurrency))
            ended = time.monotonic()
            drain = wait_for_count(http, code, served + 1, timeout=120, headers=owned)
            rate = served / args.seconds
            wait_until(lambda: clicks_delivered(receiver) >= served + 1, timeout=120)
            webhook_drain = receiver.ledger.arrivals[-1][0] - ended
            per_delivery = clicks_delivered(receiver) / len(receiver.ledger.arrivals)
            receiver.down()

            backlog_code = http.post("/api/v1/links", json={"url": "https://e.com/q"}).json()[
                "code"
            ]
            next(p for p in processes if p.name == "analytics").stop()
            produced = asyncio.run(
                produce_backlog(f"127.0.0.1:{ports.broker}", backlog_code, args.backlog)
            )
            restart(processes, "analytics", ports, state)
            # From the first click counted (the consumer has joined its group)
            # to the last: the counting rate, without the restart and the join.
            wait_for_count(http, backlog_code, 1, timeout=60)
            rest = wait_for_count(http, backlog_code, args.backlog, timeout=300)
            count_rate = (args.backlog - 1) / max(rest, 1e-9)
        rows = [
            ("redirects served through the gateway (10 s burst, hot link)", f"{rate:,.0f} /s"),
            ("drain: burst end -> last click visible in stats", f"{drain:.2f} s"),
            (
                "webhooks: burst end -> last click delivered to the endpoint",
                f"{webhook_drain:.2f} s",
            ),
            ("webhooks: clicks per delivery (batched, at most 100)", f"{per_delivery:.0f}"),
            ("clicks counted by analytics (backlog of one link, alone)", f"{count_rate:,.0f} /s"),
            ("backlog produced to the topic", f"{args.backlog:,} events in {produced:.1f} s"),
            ("counting rate / redirect rate", f"{count_rate / max(rate, 1):.1f}x"),
            ("goal: a 10 s burst drained within 2 s", "met" if drain <= 2.0 else "NOT met"),
        ]
        report(args.report, rows, served, args)
    finally:
        stop_stack(processes, state)


def report(path: Path, rows: list[tuple[str, str]], served: int, args: argparse.Namespace) -> None:
    table = "\n".join(["| measure | value |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])
    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    text = f"""# The click pipeline, measured

Written by `make bench-pipeline` (loadtests/bench_pipeline.py); do not edit
by hand. Machine: {machine()}; commit {commit()}; {when}. Everything (load
generator, gateway, services, Postgres, Redis, broker) shares the same
cores, so these are floors for a real deployment, not ceilings.

{table}

The burst served {served:,} redirects in {args.seconds:.0f} s at concurrency
{args.concurrency}; each published one click event, and the drain time is
measured from the end of the burst until the stats API shows all of them.
"""
    path.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
