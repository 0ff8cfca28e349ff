"""Closed-loop load with wrk, read back as numbers rather than scraped text.

wrk is a C load generator: on a 2-core machine where the generator shares
the cores with the system under test, a Python generator would take a large
share of the CPU it is trying to measure. Every run gets a Lua ``done``
hook that prints one JSON line (exact percentiles in microseconds, error
counts), so nothing depends on the layout of wrk's human-readable report.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["WrkResult", "cycle_script", "post_json_script", "run_wrk"]

_MARK: Final = "WRK_JSON "
MAX_SECONDS: Final = 10
"""Bound on one run: a signed direct request stays valid for 30 s, and ``make bench`` for ~3 min."""

_DONE: Final = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\\n',
    "WRK_JSON ", summary.requests, summary.duration, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run. ``bad_status`` counts answers outside 2xx/3xx (a 429, a 401, a 5xx)."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    bad_status: int
    socket_errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def good_rate(self) -> float:
        """Requests per second that got the answer they asked for."""
        return (self.requests - self.bad_status) / self.seconds


def post_json_script(body: str) -> str:
    """Every request a POST of ``body`` as JSON."""
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["content-type"] = "application/json"\n'
    )


def cycle_script(codes_file: Path, threads: int) -> str:
    """GET ``/<code>`` for each line of ``codes_file``, each of ``threads`` its own share.

    Threads take disjoint slices (code i goes to thread i mod n), so no code
    is asked for twice until every code has been asked for once. Pass the
    same ``threads`` to ``run_wrk``.
    """
    return f"""
local started = 0
setup = function(thread)
  thread:set("id", started)
  started = started + 1
end
local mine, next_code = {{}}, 1
init = function(args)
  local i = 0
  for line in io.lines({json.dumps(str(codes_file))}) do
    if i % {threads} == id then
      mine[#mine + 1] = "/" .. line
    end
    i = i + 1
  end
end
request = function()
  local path = mine[next_code]
  next_code = next_code % #mine + 1
  return wrk.format("GET", path)
end
"""


def run_wrk(
    url: str,
    *,
    seconds: float,
    connections: int = 50,
    threads: int = 2,
    headers: Mapping[str, str] | None = None,
    script: str = "",
) -> WrkResult:
    """Run wrk against ``url`` and return what it measured (``seconds`` is capped)."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk not found on PATH (Debian: apt-get install wrk)")
    whole = min(max(math.ceil(seconds), 1), MAX_SECONDS)  # wrk takes whole seconds only
    lua = script + _DONE
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as file:
        file.write(lua)
        file.flush()
        argv: list[str] = [binary, f"-t{threads}", f"-c{connections}", f"-d{whole}s"]
        argv += ["--latency", "-s", file.name, *_header_args(headers or {}), url]
        done = subprocess.run(  # noqa: S603 - a fixed binary and our own arguments
            argv, capture_output=True, text=True, check=False, timeout=whole + 30
        )
    line = next((x for x in done.stdout.splitlines() if x.startswith(_MARK)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    raw = json.loads(line.removeprefix(_MARK))
    return WrkResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        bad_status=raw["status"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
    )


def _header_args(headers: Mapping[str, str]) -> Sequence[str]:
    return [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
