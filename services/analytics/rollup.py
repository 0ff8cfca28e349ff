"""A batch of clicks, pre-aggregated into the rows the rollup tables add up.

Counting in Python first means a batch of any size costs one upsert per
table, and a link clicked 400 times in a batch costs one row update, not 400.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from services.analytics.classify import Agent, AgentClassifier, referrer_domain
from services.chassis.decoding import Click

__all__ = ["ClassifiedClick", "Rollup", "classify_clicks"]

Row = tuple[Any, ...]


class ClassifiedClick(NamedTuple):
    """A click with everything the rollups need, in UTC buckets. (A tuple: a
    frozen dataclass cost 1.7 µs to build, a third of a click's classifying.)"""

    event_id: str
    code: str
    hour: datetime
    day: date
    referrer: str
    agent: Agent
    ip_hash: str | None


# Referrers repeat as User-Agents do; urlsplit costs ~1 µs a click.
_referrer_domain: Callable[[str | None], str] = functools.lru_cache(maxsize=4096)(referrer_domain)


def classify_clicks(clicks: Iterable[Click], classifier: AgentClassifier) -> list[ClassifiedClick]:
    """Parse headers and bucket times; CPU work, run off the event loop."""
    classified = []
    for click in clicks:
        at = click.occurred_at.astimezone(UTC)
        hour = at.replace(minute=0, second=0, microsecond=0)
        classified.append(
            ClassifiedClick(
                click.event_id,
                click.code,
                hour,
                hour.date(),
                _referrer_domain(click.referrer),
                classifier.classify(click.user_agent),
                click.ip_hash,
            )
        )
    return classified


def _counts() -> defaultdict[Row, list[int]]:
    return defaultdict(lambda: [0, 0])


@dataclass
class Rollup:
    """Human and bot clicks per (code, hour), (code, day) and (code, day, dimension, value)."""

    hourly: defaultdict[Row, list[int]] = field(default_factory=_counts)
    daily: defaultdict[Row, list[int]] = field(default_factory=_counts)
    by_dimension: defaultdict[Row, list[int]] = field(default_factory=_counts)
    humans: int = 0
    bots: int = 0

    @classmethod
    def of(cls, clicks: Iterable[ClassifiedClick]) -> Rollup:
        # Clicks alike in every counted respect are counted together first:
        # in a batch, most of a link's clicks share the hour and the headers.
        alike = Counter((c.code, c.hour, c.day, c.referrer, c.agent) for c in clicks)
        rollup = cls()
        for (code, hour, day, referrer, agent), n in alike.items():
            slot = 1 if agent.bot else 0
            rollup.hourly[code, hour][slot] += n
            rollup.daily[code, day][slot] += n
            for dimension, value in (
                ("referrer", referrer),
                ("device", agent.device),
                ("browser", agent.browser),
                ("os", agent.os),
            ):
                rollup.by_dimension[code, day, dimension, value][slot] += n
            if agent.bot:
                rollup.bots += n
            else:
                rollup.humans += n
        return rollup

    @staticmethod
    def rows(counts: dict[Row, list[int]]) -> Sequence[Row]:
        """``(key..., clicks, bot_clicks)`` tuples, in key order.

        Sorted so that concurrent batches (two replicas, a rebalance) lock
        rows in one order and cannot deadlock each other.
        """
        return [(*key, humans, bots) for key, (humans, bots) in sorted(counts.items())]
