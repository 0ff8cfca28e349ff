"""Open-loop load: requests sent on a fixed timeline, latency from the intended send time.

A closed-loop generator (wrk, most benchmarks) sends the next request only
when an answer comes back, so a server that stalls for a second also stops
the clock for every request it would have received in that second; the
stall shows up as a handful of slow requests instead of a thousand. This
is coordinated omission (Gil Tene). Here request ``i`` is due at
``start + i / rate`` whatever happened before, and its latency runs from
that instant: time spent waiting for a free connection counts, as the user
would feel it.

wrk2 does this in C but is not packaged for Debian. A generator built on a
full HTTP client (aiohttp) added ~15 ms to the p99 of the bare floor app at
1,000/s on this machine, more than the target it was to check; so this one
is a bare asyncio protocol per keep-alive connection, with httptools (the
parser uvicorn uses) reading the answers and no task per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Final, cast
from urllib.parse import urlsplit

import httptools
import uvloop

__all__ = ["SLOT_TOLERANCE_MS", "OpenLoopResult", "run_open_loop"]

SLOT_TOLERANCE_MS: Final = 2.0
"""A request written to a connection later than this after its due time missed its slot.

The event loop's timers tick in whole milliseconds, so up to 1 ms of
lateness is the generator's own resolution, not the system falling behind.
"""


@dataclass
class OpenLoopResult:
    """What one open-loop run saw; latencies in milliseconds from the intended send time."""

    rate: float
    seconds: float
    scheduled: int = 0
    answered: int = 0
    errors: int = 0  # answered but not with a redirect, or the connection was lost
    missed_slots: int = 0
    unfinished: int = 0  # still queued or in flight when the run was cut off
    latencies_ms: list[float] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile over every scheduled request.

        An unfinished request counts with the time it had waited at the
        cut-off, so when ``unfinished`` > 0 the tail is a lower bound.
        """
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return math.nan
        return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def run_open_loop(
    url: str, *, rate: float, seconds: float, connections: int = 50, grace: float = 5.0
) -> OpenLoopResult:
    """Offer ``rate`` GETs of ``url`` per second for ``seconds``; wait ``grace`` for stragglers."""
    result = OpenLoopResult(rate=rate, seconds=seconds, scheduled=int(rate * seconds))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_Generator(url, result, connections).run(grace))
    return result


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, generator: _Generator) -> None:
        self.generator = generator
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.intended: float | None = None  # due time of the request in flight

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.generator.ready(self)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:  # httptools callback
        self.generator.answered(self, self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self.generator.lost(self)

    def send(self, request: bytes, intended: float) -> None:
        assert self.transport is not None
        self.intended = intended
        self.transport.write(request)


class _Generator:
    def __init__(self, url: str, result: OpenLoopResult, connections: int) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.request = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
        self.result = result
        self.connections = connections
        self.idle: deque[_Connection] = deque()  # FIFO, so none idles into a keep-alive timeout
        self.backlog: deque[float] = deque()  # due, but every connection was busy
        self.in_flight: set[_Connection] = set()
        self.finished = asyncio.Event()
        self.closing = False
        self.reconnecting: set[asyncio.Task[object]] = set()

    async def run(self, grace: float) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.connections):
            await loop.create_connection(lambda: _Connection(self), self.host, self.port)
        start = time.perf_counter() + 0.05
        await self._schedule(start)
        cutoff = start + self.result.seconds + grace
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.finished.wait(), max(0.0, cutoff - time.perf_counter()))
        # Whatever did not finish had waited at least until the cut-off.
        late = [*self.backlog, *(c.intended for c in self.in_flight if c.intended is not None)]
        self.result.unfinished = len(late)
        self.result.latencies_ms.extend((cutoff - intended) * 1000 for intended in late)
        self.closing = True
        for connection in (*self.idle, *self.in_flight):
            if connection.transport is not None:
                connection.transport.abort()

    async def _schedule(self, start: float) -> None:
        """Release each request at its due time; a late wake-up releases all that are due."""
        rate, total, sent = self.result.rate, self.result.scheduled, 0
        while sent < total:
            now = time.perf_counter()
            while sent < total and start + sent / rate <= now:
                self._due(start + sent / rate)
                sent += 1
            if sent < total:
                await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter()))

    def _due(self, intended: float) -> None:
        if self.idle:
            self._send(self.idle.popleft(), intended)
        else:
            self.backlog.append(intended)

    def _send(self, connection: _Connection, intended: float) -> None:
        if (time.perf_counter() - intended) * 1000 > SLOT_TOLERANCE_MS:
            self.result.missed_slots += 1
        self.in_flight.add(connection)
        connection.send(self.request, intended)

    def ready(self, connection: _Connection) -> None:
        if self.backlog:
            self._send(connection, self.backlog.popleft())
        else:
            self.idle.append(connection)

    def _record(self, connection: _Connection, redirected: bool) -> None:
        assert connection.intended is not None
        self.result.latencies_ms.append((time.perf_counter() - connection.intended) * 1000)
        self.result.answered += 1
        self.result.errors += not redirected
        connection.intended = None
        self.in_flight.discard(connection)
        if self.result.answered == self.result.scheduled:
            self.finished.set()

    def answered(self, connection: _Connection, status: int) -> None:
        self._record(connection, 300 <= status < 400)
        self.ready(connection)

    def lost(self, connection: _Connection) -> None:
        if self.closing:
            return  # our own abort at the cut-off; what was in flight is counted already
        if connection in self.idle:
            self.idle.remove(connection)
        if connection.intended is not None:
            self._record(connection, redirected=False)
        # Keep the pool at its size: a closed keep-alive is not the end of the test.
        loop = asyncio.get_running_loop()
        task = loop.create_task(
            loop.create_connection(lambda: _Connection(self), self.host, self.port)
        )
        self.reconnecting.add(task)
        task.add_done_callback(self.reconnecting.discard)
