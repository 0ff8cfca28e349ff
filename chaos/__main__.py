"""``python -m chaos``: run the chaos suite against the running stack.

    make dev            # one terminal: the local stack (its runner restarts what dies)
    make chaos          # another: every experiment, report in docs/chaos-report.md
    python -m chaos --only kill-link,freeze-broker --report /tmp/chaos.md
    python -m chaos --target compose --gateway http://127.0.0.1:8000

Exits 1 when any expectation fails.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from pathlib import Path

import httpx

from chaos.experiments import EXPERIMENTS, by_name
from chaos.judge import Outcome
from chaos.probes import Context
from chaos.report import render, write
from chaos.run import run_experiment
from chaos.target import ComposeTarget, LocalTarget, Target
from infra.devstack.stack import REPO_ROOT
from infra.devstack.state import StateDir, state_root
from loadtests.accounts import open_account

DEFAULT_REPORT = REPO_ROOT / "docs" / "chaos-report.md"


def _context(gateway: str) -> Context:
    """An account to seed links with, and a login issued before any fault."""
    with httpx.Client(base_url=gateway, timeout=10) as http:
        account = open_account(http, "chaos")
        password = secrets.token_urlsafe(18)
        email = f"chaos-login-{secrets.token_hex(6)}@example.com"
        credentials = {"email": email, "password": password}
        http.post("/api/v1/auth/register", json=credentials).raise_for_status()
        login = http.post("/api/v1/auth/login", json=credentials)
        login.raise_for_status()
    return Context(gateway, account, login.json()["access_token"], email, password)


def _target(args: argparse.Namespace) -> Target:
    if args.target == "compose":
        return ComposeTarget(
            gateway=args.gateway or "http://127.0.0.1:8000", toxiproxy=args.toxiproxy
        )
    return LocalTarget(StateDir(Path(args.state_dir)), gateway=args.gateway or "")


async def _run_all(args: argparse.Namespace) -> list[Outcome]:
    target = _target(args)
    context = await asyncio.to_thread(_context, target.gateway)
    chosen = by_name(args.only.split(",")) if args.only else list(EXPERIMENTS)
    outcomes = []
    for experiment in chosen:
        print(f"chaos: {experiment.name}: {experiment.summary}", flush=True)
        outcome = await run_experiment(experiment, target, context, args.rate, args.links)
        verdict = "pass" if outcome.passed else "FAIL: " + "; ".join(outcome.failures)
        rto = f"{outcome.rto_seconds:.1f} s" if outcome.rto_seconds is not None else "-"
        print(f"chaos:   {'; '.join(outcome.observed)}", flush=True)
        print(f"chaos:   RTO {rto}, RPO {outcome.rpo_events} events -> {verdict}", flush=True)
        outcomes.append(outcome)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("local", "compose"), default="local")
    parser.add_argument("--gateway", help="the gateway's URL (default: the one the stack recorded)")
    parser.add_argument(
        "--toxiproxy", default="http://127.0.0.1:8474", help="compose: toxiproxy's API"
    )
    parser.add_argument("--state-dir", default=str(state_root()))
    parser.add_argument("--only", help="comma-separated experiment names")
    parser.add_argument("--rate", type=float, default=40.0, help="redirects per second")
    parser.add_argument(
        "--links", type=int, default=10, help="fresh published links per experiment"
    )
    parser.add_argument("--report", default=str(DEFAULT_REPORT))
    args = parser.parse_args(argv)
    started = time.monotonic()
    outcomes = asyncio.run(_run_all(args))
    text = render(outcomes, f"{args.target} stack", args.rate, time.monotonic() - started)
    write(Path(args.report), text)
    print(f"chaos: report written to {args.report}")
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
