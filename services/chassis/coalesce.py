"""Calls made in one turn of the event loop, sent together.

    call --> queue --(next turn of the loop)--> send([item, item, ...]) --> one result each

A round trip through a client library (redis-py, most of all) costs more
CPU than the command it carries. Under load many requests make the same
kind of call at the same moment; a ``Coalescer`` queues them and hands the
queue to ``send`` on the next turn of the event loop, one call for all.
Nothing waits on a timer: a lone call leaves on the next turn, by itself.

``send`` returns one result per item, in order; a result that is an
exception is raised to that item's caller only. If ``send`` itself raises,
every caller of the batch gets that exception, as each would have from a
call of its own. A caller that goes away (its request cancelled) leaves the
others' results alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from prometheus_client import Histogram

__all__ = ["BATCHED_CALLS", "Coalescer"]

In = TypeVar("In")
Out = TypeVar("Out")

BATCHED_CALLS = Histogram(
    "coalesced_calls",
    "Calls sent together in one round trip, by what they are.",
    ["call"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)


class Coalescer(Generic[In, Out]):
    def __init__(
        self, name: str, send: Callable[[list[In]], Awaitable[Sequence[Out | Exception]]]
    ) -> None:
        self.name = name
        self._send = send
        self._sizes = BATCHED_CALLS.labels(name)
        self._queue: list[tuple[In, asyncio.Future[Out]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, item: In) -> Out:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Out] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._flush)
        self._queue.append((item, result))
        return await result

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        task = asyncio.create_task(self._deliver(batch), name=f"coalesced:{self.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        self._sizes.observe(len(batch))
        results: Sequence[Out | Exception]
        try:
            results = await self._send([item for item, _ in batch])
        except Exception as exc:
            results = [exc] * len(batch)
        if len(results) != len(batch):  # a defect of ``send``: no caller may hang on it
            error = RuntimeError(f"{self.name}: {len(results)} results for {len(batch)} calls")
            results = [error] * len(batch)
        for (_, future), outcome in zip(batch, results, strict=True):
            if future.done():  # its caller is gone
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
