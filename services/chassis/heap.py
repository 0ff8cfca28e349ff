"""The garbage collector of a long-running service, set once its start-up is done.

Everything a service builds while it starts (modules, routes, pools,
clients) lives as long as the process. Frozen (``gc.freeze``), the collector
never scans it again: a full collection of the gateway's start-up heap took
78-80 ms, a pause that was the open loop's p99.9. And a request allocates
hundreds of container objects, so at the default threshold (700) the
youngest generation was collected every few requests: 6.8% of the link
service's samples were in the collector during creation (py-spy --native).
Freezing and a threshold of 20,000 took 6-9% off the link service's CPU a
creation (docs/performance.md). Garbage in reference cycles, rare in a
request, waits longer to be freed; nothing else changes.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Final, TypeVar

__all__ = ["YOUNGEST_THRESHOLD", "freeze_after"]

YOUNGEST_THRESHOLD: Final = 20_000
"""Allocations, net of frees, between two collections of the youngest generation."""

App = TypeVar("App")


def freeze_after(
    lifespan: Callable[[App], AbstractAsyncContextManager[None]],
) -> Callable[[App], AbstractAsyncContextManager[None]]:
    """``lifespan``, followed once its start-up is done by a collection, a freeze
    and the collector's new threshold."""

    @asynccontextmanager
    async def frozen(app: App) -> AsyncIterator[None]:
        async with lifespan(app):
            gc.collect()
            gc.freeze()
            _, older, oldest = gc.get_threshold()
            gc.set_threshold(YOUNGEST_THRESHOLD, older, oldest)
            yield

    return frozen
