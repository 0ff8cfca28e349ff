"""One log line per kind of repeated failure, not one per retry.

aiokafka logs every failed connect and fetch, a dozen lines a second while
the broker is down; ``quiet_aiokafka`` puts a ``RepeatFilter`` on its
loggers (services/chassis/kafka.py calls it when a publisher starts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["SUMMARY_SECONDS", "RepeatFilter", "quiet_aiokafka"]

# While something keeps failing, one line per kind of failure this often.
SUMMARY_SECONDS = 60.0


class RepeatFilter(logging.Filter):
    """Lets the first line of each kind through, then one per ``window`` seconds
    carrying ``suppressed``: how many like it were dropped since the last one.

    A kind is the logger, the level and the message *template* (``%s`` not
    filled in), so a retry loop that logs the same failure with a new node
    id or errno each time counts as one kind.
    """

    def __init__(
        self, window: float = SUMMARY_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._window = window
        self._clock = clock
        # kind -> (when its last line went out, lines dropped since)
        self._seen: dict[tuple[str, int, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, record.msg)
        now = self._clock()
        last = self._seen.get(kind)
        if last is not None and now - last[0] < self._window:
            self._seen[kind] = (last[0], last[1] + 1)
            return False
        self._seen[kind] = (now, 0)
        if last is not None:
            record.suppressed = last[1]
            record.window_seconds = self._window
        return True


_AIOKAFKA_FILTER = RepeatFilter()


def quiet_aiokafka() -> None:
    """Put one ``RepeatFilter`` on every aiokafka logger (a logger's filters do
    not apply to its children, so each gets it); safe to call again."""
    names = ["aiokafka", *(n for n in logging.root.manager.loggerDict if n.startswith("aiokafka."))]
    for name in names:
        logger = logging.getLogger(name)
        if _AIOKAFKA_FILTER not in logger.filters:
            logger.addFilter(_AIOKAFKA_FILTER)
