"""What the topics say, and what endpoints are sent: versioned payloads.

Every body is ``{"type", "timestamp", "data"}`` (Standard Webhooks). Events
are read with the analytics service's decoders (the same contracts,
docs/api/events.md); poison is logged and skipped by the consumer loop.

``link.clicked`` always carries a list, ``data.clicks``: the clicks of one
link owner's links that arrived together, up to ``WEBHOOKS_CLICK_BATCH_MAX``
per delivery. A click's ``ip_hash`` is not sent: it identifies visitors
across links, which an endpoint has no need for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from pydantic import AwareDatetime

from services.chassis.decoding import Click as ClickEvent
from services.chassis.decoding import LinkChange, decode_as

__all__ = [
    "Click",
    "LinkEvent",
    "body",
    "click_data",
    "decode_click_record",
    "decode_link_record",
    "link_data",
]

E = TypeVar("E", "Click", "LinkEvent")
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


class Click(ClickEvent):
    """A ``LinkClicked``, with the trace context its message carried."""

    traceparent: str | None = None


class LinkEvent(LinkChange):
    """A ``LinkChanged`` with the link's state after the change, and its trace context."""

    url: str | None = None
    expires_at: AwareDatetime | None = None
    redirect_type: int | None = None
    max_visits: int | None = None
    traceparent: str | None = None


def _decode_record(record: Any, model: type[E]) -> E:
    """The event in a consumed record (aiokafka's), its ``traceparent`` header kept:
    the delivery it owes continues that event's trace."""
    event = decode_as(record.value, model)
    for key, value in record.headers or ():
        if key == "traceparent" and _TRACEPARENT.fullmatch(text := value.decode("latin-1")):
            return event.model_copy(update={"traceparent": text})
    return event


def decode_click_record(record: Any) -> Click:
    return _decode_record(record, Click)


def decode_link_record(record: Any) -> LinkEvent:
    return _decode_record(record, LinkEvent)


def click_data(click: Click) -> dict[str, Any]:
    return {
        "event_id": click.event_id,
        "code": click.code,
        "occurred_at": click.occurred_at.isoformat(),
        "referrer": click.referrer,
        "user_agent": click.user_agent,
    }


def link_data(event: LinkEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "code": event.code,
        "url": event.url,
        "expires_at": event.expires_at.isoformat() if event.expires_at else None,
        "redirect_type": event.redirect_type,
        "max_visits": event.max_visits,
        "occurred_at": event.occurred_at.isoformat(),
    }


def body(event_type: str, data: Mapping[str, Any] | Sequence[Any]) -> str:
    """The JSON body of a delivery, stamped now; stored, so every attempt sends these bytes."""
    payload = {"type": event_type, "timestamp": datetime.now(UTC).isoformat(), "data": data}
    return orjson.dumps(payload).decode()
