"""Tables of the link service."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.chassis.db import NAMING_CONVENTION

__all__ = ["Link", "OutboxMessage"]


class Base(DeclarativeBase):
    """The link service's tables, in metadata of its own: its database is its own."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Link(Base):
    __tablename__ = "links"
    __table_args__ = (
        CheckConstraint("redirect_type IN (301, 302, 307, 308)", name="redirect_type"),
        CheckConstraint("max_visits IS NULL OR max_visits > 0", name="max_visits_positive"),
        # "My links, newest first, after this cursor" is one index range scan.
        Index("ix_links_owner_id_id", "owner_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # The unique index is what makes codes unique under any race.
    code: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(Text)
    redirect_type: Mapped[int] = mapped_column(SmallInteger, default=302)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The user service's user id; null for links created anonymously. No
    # foreign key: users live in another service's database.
    owner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Deleted links keep their row, so their code is never handed out again
    # (a reused code would send old links in the wild somewhere new).
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # After this many redirects the link answers 410. ``visits`` counts only
    # redirects served while a limit is set, in one atomic UPDATE each
    # (repository.count_visit): unlimited links never pay a write per visit.
    max_visits: Mapped[int | None] = mapped_column(BigInteger)
    visits: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class OutboxMessage(Base):
    """An event written in the transaction of the change it reports (see outbox.py)."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The relay reads only pending rows, oldest first; published rows (kept
        # a few days to answer "did it go out, and when") never enter it.
        Index("ix_outbox_pending", "id", postgresql_where=text("published_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    topic: Mapped[str] = mapped_column(Text)
    key: Mapped[bytes] = mapped_column(LargeBinary)
    # The bytes the event contract serialised, sent as they are: jsonb would
    # reorder and respace them. Read with convert_from(payload, 'UTF8')::jsonb.
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The W3C traceparent of the event's creation, sent as a Kafka header, so
    # the consumers' spans join the trace of the request that made the change.
    # Null outside a sampled trace.
    traceparent: Mapped[str | None] = mapped_column(Text)
