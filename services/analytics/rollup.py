"""A batch of clicks, pre-aggregated into the rows the rollup tables add up.

Counting in Python first means a batch of any size costs one upsert per
table, and a link clicked 400 times in a batch costs one row update, not 400.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from services.analytics.classify import Agent, AgentClassifier, referrer_domain
from services.analytics.decoding import Click

__all__ = ["ClassifiedClick", "Rollup", "classify_clicks"]

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ClassifiedClick:
    """A click with everything the rollups need, in UTC buckets."""

    event_id: str
    code: str
    hour: datetime
    day: date
    referrer: str
    agent: Agent
    ip_hash: str | None


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
                referrer_domain(click.referrer),
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
        rollup = cls()
        for click in clicks:
            slot = 1 if click.agent.bot else 0
            rollup.hourly[click.code, click.hour][slot] += 1
            rollup.daily[click.code, click.day][slot] += 1
            agent = click.agent
            for dimension, value in (
                ("referrer", click.referrer),
                ("device", agent.device),
                ("browser", agent.browser),
                ("os", agent.os),
            ):
                rollup.by_dimension[click.code, click.day, dimension, value][slot] += 1
            if click.agent.bot:
                rollup.bots += 1
            else:
                rollup.humans += 1
        return rollup

    @staticmethod
    def rows(counts: dict[Row, list[int]]) -> Sequence[Row]:
        """``(key..., clicks, bot_clicks)`` tuples, in key order.

        Sorted so that concurrent batches (two replicas, a rebalance) lock
        rows in one order and cannot deadlock each other.
        """
        return [(*key, humans, bots) for key, (humans, bots) in sorted(counts.items())]
