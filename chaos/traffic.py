"""Redirect traffic at a fixed rate, recorded request by request.

Open loop: a request leaves every ``1/rate`` seconds whether or not the
previous ones have answered, so a stalled system shows up as latency and
errors instead of quietly slowing the load (coordinated omission). Each
answer is kept with its send time, so any window (before, during, after the
fault) can be judged afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

__all__ = ["BROWSER", "Sample", "Traffic", "WindowStats"]

# A browser's User-Agent: the analytics service counts bots apart.
BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}


@dataclass(frozen=True, slots=True)
class Sample:
    sent: float  # time.monotonic()
    latency: float
    status: int  # 0: no HTTP answer at all
    code: str
    stale: bool


@dataclass(frozen=True, slots=True)
class WindowStats:
    requests: int
    redirects: int
    p99_ms: float
    statuses: dict[int, int]

    @property
    def success(self) -> float:
        return self.redirects / self.requests if self.requests else 1.0


@dataclass
class Traffic:
    gateway: str
    codes: Sequence[str]
    rate: float
    timeout: float = 5.0
    max_in_flight: int = 400
    samples: list[Sample] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Send until ``stop()``; every request started is waited for."""
        limits = httpx.Limits(max_connections=self.max_in_flight)
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:
            tasks: set[asyncio.Task[None]] = set()
            interval = 1.0 / self.rate
            next_at = time.monotonic()
            n = 0
            while not self._stop.is_set():
                code = self.codes[n % len(self.codes)]
                n += 1
                task = asyncio.create_task(self._one(client, code))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if tasks:
                await asyncio.gather(*tasks)

    def stop(self) -> None:
        self._stop.set()

    async def _one(self, client: httpx.AsyncClient, code: str) -> None:
        sent = time.monotonic()
        try:
            response = await client.get(f"{self.gateway}/{code}", headers=BROWSER)
            status = response.status_code
            stale = response.headers.get("x-gateway-cache") == "stale"
        except httpx.HTTPError:
            status, stale = 0, False
        self.samples.append(Sample(sent, time.monotonic() - sent, status, code, stale))

    def window(self, start: float, end: float) -> WindowStats:
        """What the requests sent in [start, end) saw."""
        chosen = [s for s in self.samples if start <= s.sent < end]
        return summarize(chosen)

    def redirects_by_code(self) -> Counter[str]:
        """Redirects each link returned: the clicks analytics must end up counting."""
        return Counter(s.code for s in self.samples if 300 <= s.status < 400)


def summarize(samples: Sequence[Sample]) -> WindowStats:
    latencies = sorted(s.latency for s in samples)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    return WindowStats(
        requests=len(samples),
        redirects=sum(1 for s in samples if 300 <= s.status < 400),
        p99_ms=p99 * 1000,
        statuses=dict(Counter(s.status for s in samples)),
    )
