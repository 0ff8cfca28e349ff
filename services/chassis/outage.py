"""Living with dependencies that come and go: backoff, and one log line per outage.

A consumer that logged every failed attempt would bury the one line that
matters under thousands; ``Outage`` writes a line when a dependency goes
away and one when it is back, with how long it was gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

__all__ = ["Backoff", "Outage"]


class Outage:
    """Tracks whether ``what`` is failing; logs the first failure and the recovery."""

    def __init__(self, log: logging.Logger, what: str, **fields: str) -> None:
        self._log = log
        self._what = what
        self._fields = fields
        self._since: float | None = None

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException) -> None:
        if self._since is None:
            self._since = time.monotonic()
            # The traceback once per outage: enough to tell a lost connection
            # from a bug, without one per retry.
            self._log.warning(
                f"{self._what} failing, retrying",
                extra={**self._fields, "error": repr(error)},
                exc_info=error,
            )

    def recovered(self) -> None:
        if self._since is not None:
            seconds = round(time.monotonic() - self._since, 3)
            self._since = None
            self._log.info(
                f"{self._what} recovered", extra={**self._fields, "outage_seconds": seconds}
            )


class Backoff:
    """Exponential delays with jitter, cut short when ``interrupt`` is set (shutdown)."""

    def __init__(
        self, interrupt: asyncio.Event, *, initial: float = 0.1, maximum: float = 5.0
    ) -> None:
        self._interrupt = interrupt
        self._initial = initial
        self._maximum = maximum
        self._delay = initial

    def reset(self) -> None:
        self._delay = self._initial

    async def wait(self) -> None:
        # Full jitter: replicas that failed together do not retry together.
        delay = random.uniform(self._delay / 2, self._delay)  # noqa: S311 - not cryptographic
        self._delay = min(self._delay * 2, self._maximum)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._interrupt.wait(), delay)
