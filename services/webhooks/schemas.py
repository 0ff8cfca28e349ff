"""API input and output of the webhooks service (never the ORM classes)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.chassis.timestamps import Rfc3339

__all__ = [
    "EVENT_TYPES",
    "AttemptOut",
    "DeliveryOut",
    "DeliveryPage",
    "EndpointCreate",
    "EndpointCreated",
    "EndpointList",
    "EndpointOut",
    "EndpointUpdate",
    "EventType",
    "RedeliverFailed",
    "Redelivered",
    "SecretOut",
    "SecretRotate",
]

EventType = Literal["link.clicked", "link.created", "link.updated", "link.deleted"]
EVENT_TYPES: Final = ("link.clicked", "link.created", "link.updated", "link.deleted")
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Url = Annotated[str, Field(min_length=1, max_length=4096)]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES))]
Codes = Annotated[list[Code], Field(min_length=1, max_length=100)]
Description = Annotated[str, Field(max_length=200)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointCreate(_In):
    url: Url
    event_types: EventTypes
    # Only these links' events; absent or null: every link of the owner.
    codes: Codes | None = None
    description: Description = ""


class EndpointUpdate(_In):
    """Only the fields sent change; ``codes: null`` means every link again."""

    url: Url | None = None
    event_types: EventTypes | None = None
    codes: Codes | None = None
    description: Description | None = None
    # false disables the endpoint (nothing new is owed to it), true enables it
    # again, an auto-disabled one included: what it is owed is then sent.
    enabled: bool | None = None


class EndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    codes: list[str] | None
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    # Shown once, here and on rotation: receivers verify with it.
    secret: str


class EndpointList(BaseModel):
    items: list[EndpointOut]


class SecretRotate(_In):
    # How long the old secret still signs (both do meanwhile); default: a day.
    overlap_seconds: Annotated[int, Field(ge=0, le=7 * 24 * 3600)] | None = None


class SecretOut(BaseModel):
    secret: str
    previous_secret_expires_at: datetime | None


class AttemptOut(BaseModel):
    attempted_at: datetime
    # delivered | failed | timeout | refused | error (docs/webhooks.md)
    outcome: str
    status: int | None
    latency_seconds: float
    excerpt: str
    error: str | None


class DeliveryOut(BaseModel):
    # The webhook-id header of every attempt: receivers deduplicate by it.
    id: str
    event_type: str
    state: Literal["pending", "delivered", "failed"]
    attempt_count: int
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    attempts: list[AttemptOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class RedeliverFailed(_In):
    since: Rfc3339


class Redelivered(BaseModel):
    redelivered: int
