"""Turning raw messages into events, or refusing them as poison.

A message is poison when no retry could ever make it count: its value is
not JSON, it misses or mangles a field, or it speaks a ``schema_version``
this service does not know. Poison goes to the dead-letter topic, with the
reason; everything that passes here is safe to write (bounded lengths, no
NUL characters, which Postgres text cannot hold), so one bad event can never
wedge a partition by failing its batch forever.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Final, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from services.chassis.events import LinkChangeType

__all__ = [
    "KNOWN_SCHEMA_VERSIONS",
    "Click",
    "LinkChange",
    "PoisonMessage",
    "decode_as",
    "decode_click",
    "decode_link_change",
]

KNOWN_SCHEMA_VERSIONS: Final = frozenset({1})
# The alphabet of link codes and of event ids (the link service's hex uuids).
_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# Headers are cut to 512 characters by the link service; a longer value is
# cut here too rather than refused, and never reaches a regex whole.
_MAX_HEADER = 512


class PoisonMessage(Exception):
    """A message that can never be processed; ``reason`` is a stable short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _clean(value: str | None) -> str | None:
    return value.replace("\x00", "")[:_MAX_HEADER] if value else None


_Header = Annotated[str | None, AfterValidator(_clean)]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: str = Field(pattern=_ID_PATTERN)
    code: str = Field(pattern=_ID_PATTERN)
    occurred_at: AwareDatetime
    schema_version: int


class Click(_Event):
    """A ``LinkClicked`` (version 1) as counted."""

    referrer: _Header = None
    user_agent: _Header = None
    ip_hash: str | None = Field(default=None, max_length=128, pattern=r"^[0-9A-Za-z]*$")


class LinkChange(_Event):
    """A ``LinkChanged`` (version 1): what its consumers read of it."""

    type: LinkChangeType
    owner_id: uuid.UUID | None = None

    @property
    def deleted_at(self) -> datetime | None:
        return self.occurred_at if self.type == "link.deleted" else None


E = TypeVar("E", bound=_Event)


def decode_as(value: bytes | None, model: type[E]) -> E:
    """``value`` as an event of ``model`` (a subclass of an event here), or ``PoisonMessage``."""
    if not value:
        raise PoisonMessage("not_json", "the message has no value")
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise PoisonMessage("not_json", str(exc)) from None
    if not isinstance(raw, dict):
        raise PoisonMessage("invalid_event", "the value is not a JSON object")
    if "schema_version" not in raw:
        raise PoisonMessage("invalid_event", "bad or missing: schema_version")
    version = raw["schema_version"]
    # bool is an int to Python, and true == 1.
    if type(version) is not int or version not in KNOWN_SCHEMA_VERSIONS:
        raise PoisonMessage("unknown_schema_version", f"schema_version {version!r}"[:100])
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        fields = sorted({".".join(map(str, err["loc"])) for err in exc.errors()})
        raise PoisonMessage("invalid_event", "bad or missing: " + ", ".join(fields)) from None


def decode_click(value: bytes | None) -> Click:
    """The click in ``value``, or ``PoisonMessage``."""
    return decode_as(value, Click)


def decode_link_change(value: bytes | None) -> LinkChange:
    """The link change in ``value``, or ``PoisonMessage``."""
    return decode_as(value, LinkChange)
