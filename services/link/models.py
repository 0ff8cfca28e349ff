"""Tables of the link service."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Identity,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.chassis.db import Base

__all__ = ["Link"]


class Link(Base):
    __tablename__ = "links"
    __table_args__ = (
        CheckConstraint("redirect_type IN (301, 302, 307, 308)", name="redirect_type"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # The unique index is what makes codes unique under any race.
    code: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(Text)
    redirect_type: Mapped[int] = mapped_column(SmallInteger, default=302)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
