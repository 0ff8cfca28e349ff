"""The rules of reading stats: who may see which link's, over which window.

Only rollups are read, so a request costs the same for a link with ten
clicks or ten million: a few index range scans bounded by the window.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.analytics.exceptions import LinkNotFound, NotLinkOwner
from services.analytics.repository import LinkRepository, StatsRepository
from services.analytics.schemas import (
    DeviceBreakdown,
    DimensionCount,
    LinkStats,
    ReferrerCount,
    SeriesPoint,
    StatsTotals,
    TopLink,
    TopLinks,
)
from services.analytics.visitors import UniqueVisitors
from services.analytics.window import Granularity, Window
from services.chassis.db import session_scope
from services.chassis.errors import UnauthorizedError
from services.chassis.identity import Identity

__all__ = ["TOP_VALUES", "StatsService"]

# The link service's code alphabet: anything else cannot be a link.
_CODE_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOP_VALUES: Final = 10


class StatsService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], visitors: UniqueVisitors
    ) -> None:
        self.sessions = sessions
        self.visitors = visitors

    async def link_stats(
        self,
        code: str,
        caller: Identity,
        start: datetime | None,
        end: datetime | None,
        granularity: Granularity,
    ) -> LinkStats:
        """Totals, series and breakdowns of one link, for its owner (or anyone, if it has none)."""
        window = Window.of(start, end, granularity, now=datetime.now(UTC))
        if not _CODE_RE.fullmatch(code):
            raise LinkNotFound(f"No link with code '{code[:64]}'.")
        async with session_scope(self.sessions) as session:
            await self._check_readable(session, code, caller)
            stats = StatsRepository(session)
            if granularity == "hour":
                rows = await stats.hourly(code, window.start, window.end)
            else:
                rows = await stats.daily(code, window.first_day, window.end_day)
            breakdowns = await stats.breakdowns(code, window.first_day, window.end_day, TOP_VALUES)
        series = _series(window, rows)
        return LinkStats(
            code=code,
            from_=window.start,
            to=window.end,
            granularity=granularity,
            totals=StatsTotals(
                clicks=sum(p.clicks for p in series),
                bot_clicks=sum(p.bot_clicks for p in series),
                unique_visitors=await self.visitors.count(code, window.days()),
            ),
            series=series,
            **_breakdowns(breakdowns),
        )

    async def top(
        self, owner_id: uuid.UUID, start: datetime | None, end: datetime | None, limit: int
    ) -> TopLinks:
        """The owner's most clicked live links over a window of whole days."""
        window = Window.of(start, end, "day", now=datetime.now(UTC))
        async with session_scope(self.sessions) as session:
            rows = await StatsRepository(session).top_for_owner(
                owner_id, window.first_day, window.end_day, limit
            )
        items = [TopLink(code=code, clicks=c, bot_clicks=b) for code, c, b in rows]
        return TopLinks(from_=window.start, to=window.end, items=items)

    async def _check_readable(self, session: AsyncSession, code: str, caller: Identity) -> None:
        link = await LinkRepository(session).get(code)
        if link is None:
            # Clicks but no link row: its LinkChanged has not arrived yet (the
            # link service's outbox relay lags a little), or the link predates
            # the links topic. Treated as anonymous, so public: refusing would
            # hide the stats of every such link for good, and an owned link is
            # exposed at most for the moments until its event arrives.
            if await StatsRepository(session).has_clicks(code):
                return
            raise LinkNotFound(f"No link with code '{code}'.")
        # Gone everywhere, as in the link service; its rollups stay.
        if link.deleted_at is not None:
            raise LinkNotFound(f"No link with code '{code}'.")
        if link.owner_id is None:
            return
        if caller.user_id is None:
            raise UnauthorizedError("Sign in to see the stats of your links.")
        if _as_uuid(caller.user_id) != link.owner_id:
            raise NotLinkOwner("Only the owner of a link sees its stats.")


def _as_uuid(user_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(user_id)
    except ValueError:  # only a gateway bug gets here; such a caller owns nothing
        return None


def _series(window: Window, rows: Sequence[tuple[Any, ...]]) -> list[SeriesPoint]:
    """One point per bucket of the window, zero where nothing was counted."""
    counted: dict[datetime, SeriesPoint] = {}
    for bucket, clicks, bots in rows:
        start = bucket if isinstance(bucket, datetime) else _midnight(bucket)
        counted[start] = SeriesPoint(start=start, clicks=clicks, bot_clicks=bots)
    return [
        counted.get(start) or SeriesPoint(start=start, clicks=0, bot_clicks=0)
        for start in window.buckets()
    ]


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _breakdowns(rows: Sequence[tuple[Any, ...]]) -> dict[str, Any]:
    by_dimension: dict[str, list[DimensionCount]] = {
        "referrer": [],
        "device": [],
        "browser": [],
        "os": [],
    }
    for dimension, value, clicks, bots in rows:
        by_dimension[dimension].append(DimensionCount(name=value, clicks=clicks, bot_clicks=bots))
    referrers = [
        ReferrerCount(domain=d.name, clicks=d.clicks, bot_clicks=d.bot_clicks)
        for d in by_dimension.pop("referrer")
    ]
    return {"referrers": referrers, "devices": DeviceBreakdown(**by_dimension)}
