"""HTTP endpoints of the analytics service: thin, no SQL, no rules."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.analytics.dependencies import CallerDep, CurrentUser, StatsServiceDep
from services.analytics.schemas import LinkStats, TopLinks
from services.analytics.window import Granularity
from services.chassis.errors import PROBLEM_JSON
from services.chassis.timestamps import Rfc3339

__all__ = ["router"]

router = APIRouter(tags=["stats"])

_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}
_FROM = Query(
    alias="from",
    description="Start (RFC 3339, with its offset: 2026-01-31T00:00:00Z), widened to its "
    "bucket. Default: 7 days before `to`.",
)
_TO = Query(description="End (RFC 3339), exclusive, widened to its bucket. Default: now.")
From = Annotated[Rfc3339 | None, _FROM]
To = Annotated[Rfc3339 | None, _TO]


@router.get(
    "/api/v1/links/{code}/stats",
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def link_stats(
    code: str,
    *,
    caller: CallerDep,
    stats: StatsServiceDep,
    from_: From = None,
    to: To = None,
    granularity: Granularity = "day",
) -> LinkStats:
    """A link's clicks over time, referrers and devices; owner only, unless created anonymously.

    A deleted link's stats answer 404 once the deletion reaches them, normally within a second.
    """
    return await stats.link_stats(code, caller, from_, to, granularity)


@router.get("/api/v1/stats/top", responses={401: _PROBLEM, 422: _PROBLEM})
async def top_links(
    *,
    user_id: CurrentUser,
    stats: StatsServiceDep,
    from_: From = None,
    to: To = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> TopLinks:
    """The caller's most clicked links over a range of whole UTC days."""
    return await stats.top(user_id, from_, to, limit)
