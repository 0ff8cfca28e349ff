"""Tables of the webhooks service: endpoints, and what is owed to them.

A delivery is owed from the moment the consumer commits it, in the same
transaction that records which events it carries (``delivery_events``, one
row per endpoint and source event): consuming an event again owes nothing
again. The dispatcher then works only on ``deliveries``, whose rows go
``pending`` -> ``delivered`` or, once the retry schedule is spent, ``failed``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.chassis.db import NAMING_CONVENTION

__all__ = ["Attempt", "Delivery", "DeliveryEvent", "Endpoint", "LinkOwner", "ParkedClick"]

_NOW = func.now()


class Base(DeclarativeBase):
    """The webhooks service's tables, in metadata of its own: its database is its own."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Endpoint(Base):
    """Where a user wants events sent, and the secrets deliveries are signed with."""

    __tablename__ = "endpoints"
    __table_args__ = (Index("ix_endpoints_owner_id", "owner_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(200), server_default="")
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    # None: every link of the owner; else only these codes.
    codes: Mapped[list[str] | None] = mapped_column(ARRAY(String(64)), nullable=True)
    secret: Mapped[str] = mapped_column(String(100))
    # After a rotation, the old secret signs too until it expires.
    previous_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Since when every attempt has failed (None after any success).
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)


class LinkOwner(Base):
    """Who owns a link, learned from the ``links`` topic (as analytics learns it)."""

    __tablename__ = "link_owners"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ParkedClick(Base):
    """A click whose link is not known yet: fanned out when its owner is."""

    __tablename__ = "parked_clicks"
    __table_args__ = (Index("ix_parked_clicks_code", "code"),)

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, object]] = mapped_column(JSONB)
    traceparent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)


class Delivery(Base):
    """One message to one endpoint: its ``id`` is the ``webhook-id`` of every attempt."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
        Index("ix_deliveries_endpoint_id", "endpoint_id", "created_at"),
        Index(
            "ix_deliveries_finished_at", "finished_at", postgresql_where=text("state <> 'pending'")
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("endpoints.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(32))
    # The payload exactly as sent: {"type", "timestamp", "data"}.
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempt_count: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The trace of the consumed batch that owed it: the delivery continues it.
    traceparent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DeliveryEvent(Base):
    """Source event X is owed to endpoint E, by this delivery: the idempotency key."""

    __tablename__ = "delivery_events"
    __table_args__ = (Index("ix_delivery_events_delivery_id", "delivery_id"),)

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # No foreign key: the consumer claims its events first and creates the
    # deliveries only for the claims that were new (services/webhooks/fanout.py).
    delivery_id: Mapped[uuid.UUID] = mapped_column(Uuid)


class Attempt(Base):
    """One HTTP request of a delivery, and what came of it."""

    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_delivery_id", "delivery_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_NOW)
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_seconds: Mapped[float] = mapped_column(Float)
    excerpt: Mapped[str] = mapped_column(Text, server_default="")
    error: Mapped[str | None] = mapped_column(String(32), nullable=True)
