"""Postgres ``LISTEN`` on a connection of its own: a wake-up when another process commits.

A background worker that polls a table for rows other replicas write (the
link service's outbox relay) finds nothing in almost every poll, and pays
for each: a transaction, a query, the ORM around them. Told by ``NOTIFY``
instead (sent at commit, so only for rows it can see), it can poll rarely,
as a safety net for what no notification announces.

The connection is not the pool's: it stays open as long as the process
listens, and a pool's connections are for short transactions. While it is
down (Postgres restarting, say), ``listening`` is False and the worker
polls as often as it did without it; ``ensure`` connects again, at most
once every ``RETRY_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

import asyncpg

__all__ = ["RETRY_SECONDS", "Listener"]

log = logging.getLogger(__name__)

RETRY_SECONDS: Final = 5.0
CONNECT_TIMEOUT_SECONDS: Final = 5.0


class Listener:
    """Calls ``on_notify`` for every notification on ``channel``, and when the
    connection is lost (whatever was announced meanwhile went unheard)."""

    def __init__(self, url: str, channel: str, on_notify: Callable[[], None]) -> None:
        self._url = _plain(url)
        self._channel = channel
        self._on_notify = on_notify
        self._connection: asyncpg.Connection | None = None
        self._retry_at = 0.0
        self._failing = False

    @property
    def listening(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def ensure(self) -> bool:
        """Whether notifications arrive, connecting first if the connection is
        down and the last attempt is ``RETRY_SECONDS`` old."""
        if self.listening:
            return True
        loop = asyncio.get_running_loop()
        if loop.time() < self._retry_at:
            return False
        self._retry_at = loop.time() + RETRY_SECONDS
        await self.close()
        connection = None
        try:
            connection = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT_SECONDS)
            await connection.add_listener(self._channel, self._notified)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            if connection is not None:
                connection.terminate()
            if not self._failing:  # one line per outage, not per attempt
                log.warning(
                    "cannot listen, polling instead",
                    extra={"channel": self._channel, "error": repr(exc)},
                )
            self._failing = True
            return False
        connection.add_termination_listener(self._lost)
        self._connection, self._failing = connection, False
        log.info("listening", extra={"channel": self._channel})
        return True

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(OSError, TimeoutError, asyncpg.PostgresError):
                await connection.close(timeout=CONNECT_TIMEOUT_SECONDS)

    def _notified(self, *_: object) -> None:
        self._on_notify()

    def _lost(self, *_: object) -> None:
        self._on_notify()


def _plain(url: str) -> str:
    """The libpq form asyncpg takes of a URL written for SQLAlchemy's asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgres+asyncpg://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url
