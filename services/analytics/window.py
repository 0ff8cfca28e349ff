"""The time window of a stats request: checked, defaulted, aligned to buckets.

``from`` is inclusive and ``to`` exclusive, both widened to whole buckets
(hours or UTC days), so that every bucket of the series is complete and the
answer says exactly which span it covers. A time without an offset is UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

from services.analytics.exceptions import InvalidRange, RangeTooLong

__all__ = ["DEFAULT_SPAN", "MAX_SPAN", "Granularity", "Window"]

Granularity = Literal["hour", "day"]
STEP: Final[dict[Granularity, timedelta]] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
DEFAULT_SPAN: Final = timedelta(days=7)
# At most about a thousand points a series: enough for any chart, and a
# bound on what one request reads whatever range is asked for.
MAX_SPAN: Final[dict[Granularity, timedelta]] = {
    "hour": timedelta(days=31),
    "day": timedelta(days=3 * 365 + 1),
}
# Bounds that keep every computation on a window far from datetime's limits.
_EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST: Final = datetime(2200, 1, 1, tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _floor(moment: datetime, granularity: Granularity) -> datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if granularity == "day" else moment


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    granularity: Granularity

    @classmethod
    def of(
        cls,
        start: datetime | None,
        end: datetime | None,
        granularity: Granularity,
        *,
        now: datetime,
    ) -> Window:
        """The window asked for, aligned to ``granularity``; the last 7 days by default."""
        try:
            end = _utc(end) if end is not None else now
            start = _utc(start) if start is not None else None
        except OverflowError:  # an offset that moves it past year 9999
            raise InvalidRange("The range is outside the supported dates.") from None
        if not all(_EARLIEST <= moment <= _LATEST for moment in (start, end) if moment):
            raise InvalidRange("Dates must fall between 1970 and 2200.")
        step = STEP[granularity]
        aligned_end = _floor(end, granularity)
        if aligned_end < end:
            aligned_end += step
        # By default the last 7 days' buckets, the current one included.
        start = start if start is not None else aligned_end - DEFAULT_SPAN
        if start >= end:
            raise InvalidRange("'from' must be before 'to'.")
        # The span asked for, before widening: exactly 31 days from 10:30 is fine.
        if end - start > MAX_SPAN[granularity]:
            raise RangeTooLong(
                f"At {granularity} granularity a range spans at most "
                f"{MAX_SPAN[granularity].days} days."
            )
        return cls(_floor(start, granularity), aligned_end, granularity)

    def buckets(self) -> list[datetime]:
        """The start of every bucket in the window, in order."""
        step = STEP[self.granularity]
        count = (self.end - self.start) // step
        return [self.start + i * step for i in range(count)]

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def end_day(self) -> date:
        """The day after the last day the window touches (exclusive)."""
        last = self.end - timedelta(microseconds=1)
        return last.date() + timedelta(days=1)

    def days(self) -> list[date]:
        """Every UTC day the window touches, for figures kept per day."""
        count = (self.end_day - self.first_day).days
        return [self.first_day + timedelta(days=i) for i in range(count)]
