"""Tables of the analytics service: rollups, never raw clicks.

Stats read only these counters, so a stats request costs the same for a link
with ten clicks or ten million: at most one row per link per bucket. Every
counter keeps humans (``clicks``) and bots (``bot_clicks``) apart, so both
stay visible and human figures never include bots. Times are UTC; a day is
a UTC day.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Index,
    MetaData,
    String,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.chassis.db import NAMING_CONVENTION

__all__ = [
    "DIMENSIONS",
    "ClicksByDimension",
    "ClicksDaily",
    "ClicksHourly",
    "KnownLink",
    "ProcessedEvent",
]

# The breakdowns kept per link per day (see ClicksByDimension).
DIMENSIONS = ("referrer", "device", "browser", "os")


class Base(DeclarativeBase):
    """The analytics service's tables, in metadata of its own: its database is its own."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ProcessedEvent(Base):
    """An event already applied: the id is what makes counting idempotent.

    Needed only while an event can still be delivered again, that is within
    the topics' retention; older rows are deleted by ``processed_at``
    (``ANALYTICS_PROCESSED_EVENTS_RETENTION_HOURS``, services/chassis/janitor.py).
    """

    __tablename__ = "processed_events"
    __table_args__ = (Index("ix_processed_events_processed_at", "processed_at"),)

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ClicksHourly(Base):
    """Clicks of one link in one hour. The primary key (code, hour) is also
    the only index a range query needs: one index range scan per request."""

    __tablename__ = "clicks_hourly"
    __table_args__ = (
        CheckConstraint("clicks >= 0 AND bot_clicks >= 0", name="counts_not_negative"),
    )

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    clicks: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    bot_clicks: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class ClicksDaily(Base):
    """Clicks of one link in one UTC day: long ranges read 24 times fewer rows
    than from the hourly table. Primary key (code, day), as above."""

    __tablename__ = "clicks_daily"
    __table_args__ = (
        CheckConstraint("clicks >= 0 AND bot_clicks >= 0", name="counts_not_negative"),
    )

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    clicks: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    bot_clicks: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class ClicksByDimension(Base):
    """Clicks of one link in one UTC day by referrer domain, device type,
    browser family or OS family: one table, not four alike, since all four
    are read together. The primary key leads with (code, day), so the read
    for a range is one index range scan."""

    __tablename__ = "clicks_by_dimension"
    __table_args__ = (
        CheckConstraint(
            "dimension IN (" + ", ".join(f"'{d}'" for d in DIMENSIONS) + ")", name="dimension"
        ),
        CheckConstraint("clicks >= 0 AND bot_clicks >= 0", name="counts_not_negative"),
    )

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    clicks: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    bot_clicks: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class KnownLink(Base):
    """A link as the ``links`` topic told us: who owns it, whether it is deleted.

    Learned from ``LinkChanged`` events, never by calling the link service,
    so stats keep working while the link service is down.
    """

    __tablename__ = "links"
    __table_args__ = (
        # "My most clicked links" starts from the caller's links. Partial:
        # anonymous and deleted links, most of the table, are never looked
        # up by owner.
        Index(
            "ix_links_owner_id",
            "owner_id",
            postgresql_where=text("owner_id IS NOT NULL AND deleted_at IS NULL"),
        ),
    )

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The user service's user id; null for links created anonymously.
    owner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the change we last applied happened: an older event arriving
    # late (a relay retry) must not undo a newer one.
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
