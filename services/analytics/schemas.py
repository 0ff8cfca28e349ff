"""API models of the analytics service (never the ORM classes)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.analytics.window import Granularity

__all__ = [
    "DeviceBreakdown",
    "DimensionCount",
    "LinkStats",
    "ReferrerCount",
    "SeriesPoint",
    "StatsTotals",
    "TopLink",
    "TopLinks",
]

_HUMANS = "Clicks by people: bots are never included."
_BOTS = "Clicks by bots and scripts (crawlers, link previews, clients without a User-Agent)."


class _Range(BaseModel):
    # "from" is a Python keyword: the field is from_, the JSON name "from".
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from", description="Start of the first bucket (inclusive).")
    to: datetime = Field(description="End of the last bucket (exclusive).")


class StatsTotals(BaseModel):
    clicks: int = Field(description=_HUMANS)
    bot_clicks: int = Field(description=_BOTS)
    unique_visitors: int | None = Field(
        description="The sum of each UTC day's unique human visitors (0.81% standard error "
        "per day); a visitor who came on two days counts twice. Null while it cannot be "
        "read; kept for about 400 days."
    )


class SeriesPoint(BaseModel):
    start: datetime
    clicks: int
    bot_clicks: int


class ReferrerCount(BaseModel):
    domain: str = Field(description='The referring host without "www.", or "direct".')
    clicks: int
    bot_clicks: int


class DimensionCount(BaseModel):
    name: str
    clicks: int
    bot_clicks: int


class DeviceBreakdown(BaseModel):
    device: list[DimensionCount] = Field(description="mobile, tablet, desktop, bot or other.")
    browser: list[DimensionCount]
    os: list[DimensionCount]


class LinkStats(_Range):
    """A link's clicks over a range. Breakdowns count whole UTC days the range touches."""

    code: str
    granularity: Granularity
    totals: StatsTotals
    series: list[SeriesPoint] = Field(description="One point per bucket, empty ones included.")
    referrers: list[ReferrerCount] = Field(description="The top 10, most human clicks first.")
    devices: DeviceBreakdown = Field(description="The top 10 of each, most human clicks first.")


class TopLink(BaseModel):
    code: str
    clicks: int
    bot_clicks: int


class TopLinks(_Range):
    """The caller's most clicked links over a range of whole UTC days."""

    items: list[TopLink]
