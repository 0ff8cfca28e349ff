"""``python -m chaos.webhooks``: a webhook receiver down for a while, then back.

    make chaos-webhooks            # own stack on free ports, ~2 min -> docs/chaos-report.md
    python -m chaos.webhooks --down 20 --links 5 --clicks 20 --report /tmp/chaos.md

It starts its own stack (like the benchmarks: nothing of `make dev` is
touched) with the retry schedule scaled down from hours to seconds
(``SCHEDULE``), registers an endpoint served by chaos/receiver.py, and:

1. steady state: one link and a click arrive;
2. the receiver goes down (connections refused) for ``--down`` seconds,
   while links are created and clicked through the gateway;
3. it comes back; every owed event must arrive, each under one
   ``webhook-id`` only (duplicates on the wire are allowed and counted),
   and the delay is measured;
4. throughput: a burst of link events to three endpoints of one owner,
   deliveries per second per endpoint and in all.

The numbers go into a section of the report, between markers, so the rest
of docs/chaos-report.md (``make chaos``) is kept. Exits 1 when an event is
missing or was owed twice.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from chaos.receiver import Receiver
from chaos.webhook_load import burst, publish_links
from infra.devstack.processes import free_port
from infra.devstack.stack import REPO_ROOT, Ports, start_stack, stop_stack
from infra.devstack.state import StateDir
from infra.provenance import commit, machine
from loadtests.accounts import open_account

__all__ = ["main"]

SCHEDULE = "0,2,4,8,16,32,64"
BEGIN, END = "<!-- webhooks: begin -->", "<!-- webhooks: end -->"


def wait(done: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def create_endpoint(http: httpx.Client, key: str, port: int) -> str:
    body = {
        "url": f"http://127.0.0.1:{port}/hooks",
        "event_types": ["link.clicked", "link.created"],
    }
    made = http.post("/api/v1/webhooks", json=body, headers={"x-api-key": key})
    made.raise_for_status()
    return str(made.json()["secret"])


def new_link(http: httpx.Client, key: str) -> str:
    made = http.post(
        "/api/v1/links", json={"url": "https://example.com/chaos"}, headers={"x-api-key": key}
    )
    made.raise_for_status()
    return str(made.json()["code"])


def outage(http: httpx.Client, args: argparse.Namespace) -> tuple[list[str], bool]:
    """Steady state, then the receiver down while links are made and clicked."""
    account = open_account(http, "chaos-webhooks")
    port = free_port()
    receiver = Receiver(port, create_endpoint(http, account.api_key, port))
    receiver.up()
    ledger = receiver.ledger
    warm = new_link(http, account.api_key)
    http.get(f"/{warm}")
    if not wait(lambda: len(ledger.events("link.clicked", warm)) == 1, 90):
        return ["steady state not reached: the warm-up link's click never arrived"], False
    receiver.down()
    down_at = time.monotonic()
    sent: dict[str, tuple[float, int]] = {}  # code -> (created at, clicks answered)
    for _ in range(args.links):
        created = time.monotonic()
        code = new_link(http, account.api_key)
        answered = sum(http.get(f"/{code}").is_redirect for _ in range(args.clicks))
        sent[code] = (created, answered)
        time.sleep(max(0.0, args.down / args.links - (time.monotonic() - created)))
    time.sleep(max(0.0, args.down - (time.monotonic() - down_at)))
    receiver.up()
    up_at = time.monotonic()

    def complete() -> bool:
        return all(
            len(ledger.events("link.created", c)) == 1
            and len(ledger.events("link.clicked", c)) == n
            for c, (_, n) in sent.items()
        )

    wait(complete, 120 + args.down)
    owed = sum(1 + n for _, n in sent.values())
    arrived = sum(
        len(ledger.events("link.created", c)) + len(ledger.events("link.clicked", c)) for c in sent
    )
    twice = sum(len(ids) > 1 for ids in ledger.messages.values())
    last = max((t for c in sent for t in ledger.events("link.clicked", c)), default=up_at)
    delays = [
        max(ledger.events("link.created", c) + ledger.events("link.clicked", c), default=up_at)
        - made
        for c, (made, _) in sent.items()
    ]
    receiver.down()
    lines = [
        f"receiver down {args.down:.0f} s (connections refused) while {args.links} links were"
        f" created and clicked {args.clicks} times each through the gateway",
        f"events owed {owed}, arrived {arrived}, missing {owed - arrived}",
        f"events owed under more than one webhook-id: {twice}",
        f"requests {ledger.requests}, duplicates on the wire (a webhook-id again) "
        f"{ledger.duplicates}, refused by verification {ledger.refused}",
        f"max delay, a link's creation to its last event arriving: {max(delays):.1f} s",
        f"receiver back to the last event arriving: {last - up_at:.1f} s",
    ]
    return lines, arrived == owed and twice == 0 and ledger.refused == 0


def render(lines: list[str], throughput: list[str], passed: bool, seconds: float) -> str:
    return "\n".join(
        [
            BEGIN,
            "## Webhooks: a receiver down, then back",
            "",
            f"{'pass' if passed else '**FAIL**'}: every owed event delivered once per "
            f"webhook-id from the receiver's view; {seconds:.0f} s in all.",
            "",
            f"- when: commit {commit()}; machine: {machine()}",
            f"- retry schedule scaled to seconds for the run: `{SCHEDULE}` (+-20 % jitter);"
            " production waits 5 s, 5 min, 30 min... (docs/webhooks.md)",
            "- Reproduce: `make chaos-webhooks` (its own stack on free ports).",
            "",
            *(f"- {line}" for line in lines),
            "",
            "Delivery throughput (three endpoints of one owner, link events published at once,"
            " receivers answering at once):",
            "",
            *(f"- {line}" for line in throughput),
            END,
            "",
        ]
    )


def write(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Chaos report\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        text = head + section + rest.partition(END)[2].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.webhooks", description=__doc__)
    parser.add_argument("--down", type=float, default=20.0, help="seconds the receiver is down")
    parser.add_argument("--links", type=int, default=5)
    parser.add_argument("--clicks", type=int, default=20, help="redirects per link")
    parser.add_argument("--burst", type=int, default=300, help="link events in the burst")
    parser.add_argument("--report", default=str(REPO_ROOT / "docs" / "chaos-report.md"))
    args = parser.parse_args(argv)
    os.environ["WEBHOOKS_RETRY_SCHEDULE_SECONDS"] = SCHEDULE
    os.environ["GATEWAY_RATELIMIT_REDIRECT"] = os.environ["GATEWAY_RATELIMIT_CREATE"] = (
        "100000/minute"
    )
    started = time.monotonic()
    ports = Ports.free()
    state = StateDir(Path(tempfile.mkdtemp(prefix="chaos-webhooks-", dir="/tmp")))
    processes = start_stack(ports, state)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{ports.gateway}", timeout=10) as http:
            lines, passed = outage(http, args)
            account = open_account(http, "chaos-throughput")
            receivers = [
                Receiver(port, create_endpoint(http, account.api_key, port))
                for port in (free_port(), free_port(), free_port())
            ]
        throughput = burst(receivers, lambda: publish_links(ports, account.user_id, args.burst))
    finally:
        stop_stack(processes, state)
    section = render(lines, throughput, passed, time.monotonic() - started)
    write(Path(args.report), section)
    print(section)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
