"""``make load``: Locust, headless and bounded in time, against the running ``make dev``.

Runs loadtests/locustfile.py for ``LOAD_SECONDS`` (30) with ``LOAD_USERS``
(20) simulated clients against ``LOAD_HOST`` (http://127.0.0.1:8000), writes
Locust's CSV files and HTML report under ``.devstack/load/``, puts the
headline figures in the ``load`` section of docs/performance.md, and exits
with Locust's code: non-zero when more than ``LOAD_MAX_FAIL_RATIO`` (1%) of
the requests failed. The mix is set by the ``LOAD_*`` variables the
locustfile documents.

    GATEWAY_RATELIMIT_REDIRECT=1000000/minute make dev   # in one terminal
    make load                                            # in another
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx

from infra.devstack.stack import REPO_ROOT
from loadtests.docpage import write_section

__all__ = ["LIMITED", "main"]

OUT = REPO_ROOT / ".devstack/load"
LIMITED = " [429 rate limited]"
"""Appended by the locustfile to the name of a request answered 429."""


def main() -> None:
    host = os.environ.get("LOAD_HOST", "http://127.0.0.1:8000")
    seconds = int(os.environ.get("LOAD_SECONDS", "30"))
    users = int(os.environ.get("LOAD_USERS", "20"))
    try:
        httpx.get(f"{host}/readyz", timeout=2, trust_env=False).raise_for_status()
    except httpx.HTTPError as exc:
        sys.exit(f"{host} is not ready ({exc!r}): start the stack first with `make dev`")
    limit = _redirect_limit(host)
    print(f"redirect rate limit in force: {limit}")
    OUT.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "locust", "-f", str(REPO_ROOT / "loadtests/locustfile.py"),
        "--headless", "--host", host, "--users", str(users), "--spawn-rate", str(users),
        "--run-time", f"{seconds}s", "--stop-timeout", "5", "--only-summary",
        "--csv", str(OUT / "load"), "--html", str(OUT / "report.html"),
    ]  # fmt: skip
    code = subprocess.run(argv, cwd=REPO_ROOT, check=False).returncode  # noqa: S603
    rows = _read_stats(OUT / "load_stats.csv")
    if rows and code == 0:  # the page shows runs that passed; a failed one is in OUT
        section = _section(rows, host, users, seconds, limit)
        write_section(REPO_ROOT / "docs/performance.md", "load", section)
    print(f"CSV and HTML report: {OUT.relative_to(REPO_ROOT)}/ (exit code {code})")
    sys.exit(code)


def _redirect_limit(host: str) -> str:
    """The redirect limit the running gateway enforces, from the headers of one answer."""
    # A code nobody created: a 404 still passes the limiter and carries its headers.
    answer = httpx.get(f"{host}/load-limit-probe", timeout=5, trust_env=False)
    amount, _, window = answer.headers.get("ratelimit-policy", "?;w=?").partition(";w=")
    return f"{amount} redirects per {window} s per client address"


def _read_stats(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def _section(rows: list[dict[str, str]], host: str, users: int, seconds: int, limit: str) -> str:
    table = [
        "| request | requests | req/s | failures | p50 | p95 | p99 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    limited = 0
    for row in rows:
        name = row["Name"] if row["Type"] else "**all**"
        if name.endswith(LIMITED):
            limited += int(row["Request Count"])
        count, failures = int(row["Request Count"]), int(row["Failure Count"])
        share = f"{failures:,} ({100 * failures / max(count, 1):.2f}%)"
        table.append(
            f"| {row['Type']} {name} | {count:,} | {float(row['Requests/s']):,.1f} | {share} "
            f"| {row['50%']} ms | {row['95%']} ms | {row['99%']} ms |"
        )
    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    wait = os.environ.get("LOAD_WAIT_SECONDS", "0.2")
    table_text = "\n".join(table)
    return f"""## Load test (`make load`)

Locust (loadtests/locustfile.py), {users} clients for {seconds} s against
{host} (`make dev`), {when}, {os.cpu_count()} cores shared by Locust and
the whole stack. The mix and its settings are in the locustfile's
docstring; percentiles are Locust's (closed loop, each client waiting
0-{wait} s between requests). Rate limit in force: {limit}. Answers
that were 429 are listed under their own name and are not failures:
{limited:,} in this run.

{table_text}

The stack's default limits throttle a test from one address (6,000
redirects a minute per client address, 120 creations a minute per user):
start it with them raised to measure capacity, e.g.
`GATEWAY_RATELIMIT_REDIRECT=1000000/minute GATEWAY_RATELIMIT_CREATE=100000/minute
GATEWAY_RATELIMIT_API=100000/minute make dev`.
"""


if __name__ == "__main__":
    main()
