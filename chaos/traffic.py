"""Redirect traffic at a fixed rate, recorded request by request.

Open loop: a request leaves every ``1/rate`` seconds whether or not the
previous ones have answered, so a stalled system shows up as latency and
errors instead of quietly slowing the load (coordinated omission). Each
answer is kept with its send time, so any window (before, during, after the
fault) can be judged afterwards.

Two kinds of links share the traffic. **Published** links are the ordinary
ones: the link service publishes them in its read model, so a gateway
answers them by itself (from its memory, else from the read model) and the
link service is no longer on their path once each has been visited.
**Visit-limited** links (``max_visits`` set) are never published nor
replayed: every visit must be counted in Postgres by the link service, so
they are what keeps the link service, and the gateway's ``link`` breaker,
on the redirect path during a fault. One request in ``LIMITED_EVERY`` goes
to one of them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import httpx

__all__ = [
    "BROWSER",
    "LIMITED",
    "LIMITED_EVERY",
    "PUBLISHED",
    "Kind",
    "Links",
    "Sample",
    "Traffic",
    "WindowStats",
    "summarize",
]

# A browser's User-Agent: the analytics service counts bots apart.
BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}

Kind = Literal["published", "limited"]
PUBLISHED: Kind = "published"
LIMITED: Kind = "limited"
# Ten visits a second at the default 40/s: five failed lookups, which open the
# link breaker (GATEWAY_BREAKER_FAIL_MAX), within half a second of the first
# failure. Each such visit is a batch of its own at that pace, and a breaker
# counts a failed batch once (docs/adr/0012-batched-redirect-lookups.md).
LIMITED_EVERY = 4


@dataclass(frozen=True, slots=True)
class Sample:
    sent: float  # time.monotonic()
    latency: float
    status: int  # 0: no HTTP answer at all
    code: str
    kind: Kind
    # Who answered, from x-gateway-cache: "hit" (the gateway's memory),
    # "shared" (the read model), "stale" (a replay); "": the link service.
    cache: str = ""

    @property
    def redirected(self) -> bool:
        return 300 <= self.status < 400


@dataclass(frozen=True, slots=True)
class WindowStats:
    requests: int
    redirects: int
    p99_ms: float
    statuses: dict[int, int]
    answered_by: dict[str, int]  # redirects by x-gateway-cache ("" not counted)

    @property
    def success(self) -> float:
        return self.redirects / self.requests if self.requests else 1.0

    @property
    def refused(self) -> dict[int, int]:
        """The statuses other than redirects, with their counts."""
        return {s: n for s, n in sorted(self.statuses.items()) if not 300 <= s < 400}


@dataclass(frozen=True)
class Links:
    """The links traffic goes to, by kind."""

    published: Sequence[str]
    limited: Sequence[str] = ()

    def pick(self, n: int) -> tuple[str, Kind]:
        """The link of request number ``n``: every ``LIMITED_EVERY``-th a visit-limited one."""
        if self.limited and n % LIMITED_EVERY == LIMITED_EVERY - 1:
            return self.limited[n // LIMITED_EVERY % len(self.limited)], LIMITED
        before = (n + 1) // LIMITED_EVERY if self.limited else 0  # limited requests before n
        return self.published[(n - before) % len(self.published)], PUBLISHED


@dataclass
class Traffic:
    gateway: str
    links: Links
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
                task = asyncio.create_task(self._one(client, *self.links.pick(n)))
                n += 1
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if tasks:
                await asyncio.gather(*tasks)

    def stop(self) -> None:
        self._stop.set()

    async def _one(self, client: httpx.AsyncClient, code: str, kind: Kind) -> None:
        sent = time.monotonic()
        try:
            response = await client.get(f"{self.gateway}/{code}", headers=BROWSER)
            status, cache = response.status_code, response.headers.get("x-gateway-cache", "")
        except httpx.HTTPError:
            status, cache = 0, ""
        self.samples.append(Sample(sent, time.monotonic() - sent, status, code, kind, cache))

    def between(self, start: float, end: float, kind: Kind | None = None) -> list[Sample]:
        """The requests (of ``kind``, or all) sent in [start, end)."""
        return [
            s for s in self.samples if start <= s.sent < end and (kind is None or s.kind == kind)
        ]

    def window(self, start: float, end: float, kind: Kind | None = None) -> WindowStats:
        """What the requests (of ``kind``, or all) sent in [start, end) saw."""
        return summarize(self.between(start, end, kind))

    def redirects_by_code(self, kind: Kind) -> Counter[str]:
        """Redirects each link of ``kind`` returned."""
        return Counter(s.code for s in self.samples if s.kind == kind and s.redirected)


def summarize(samples: Iterable[Sample]) -> WindowStats:
    chosen = list(samples)
    latencies = sorted(s.latency for s in chosen)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    return WindowStats(
        requests=len(chosen),
        redirects=sum(1 for s in chosen if s.redirected),
        p99_ms=p99 * 1000,
        statuses=dict(Counter(s.status for s in chosen)),
        answered_by=dict(Counter(s.cache for s in chosen if s.redirected and s.cache)),
    )
