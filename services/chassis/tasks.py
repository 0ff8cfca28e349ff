"""Background tasks stopped within a bound: how every worker ends at shutdown."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["finish_within"]


async def finish_within(task: asyncio.Task[None] | None, timeout_seconds: float) -> bool:
    """Let ``task`` finish on its own within ``timeout_seconds``, else cancel it.

    Whether it finished: a cancelled worker's work in progress is what its
    caller must account for (a batch delivered again, rows still pending).
    """
    if task is None:
        return True
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout_seconds)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    return True
