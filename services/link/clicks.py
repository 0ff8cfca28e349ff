"""Turning a served redirect into a ``LinkClicked`` event."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime

from starlette.requests import Request

from services.chassis.context import request_id_var
from services.chassis.events import CLICK_ID_HEADER, IpHasher, LinkClicked, bounded_header
from services.chassis.kafka import EventPublisher

__all__ = ["ClickRecorder"]

_CLICK_ID = re.compile(r"[0-9a-f]{32}")


class ClickRecorder:
    """Publishes one event per redirect, never waiting for the broker."""

    def __init__(self, publisher: EventPublisher, ip_hash_key: bytes | None) -> None:
        self.publisher = publisher
        self.ip_hash = IpHasher(ip_hash_key or secrets.token_bytes(32))

    def client_ip(self, request: Request) -> str | None:
        # The gateway replaces X-Real-IP with the address it saw; a direct
        # caller's own value only reaches this for internal traffic.
        return request.headers.get("x-real-ip") or (request.client.host if request.client else None)

    def record(self, request: Request, code: str) -> bool:
        headers = request.headers
        return self.record_visit(
            code,
            click_id=headers.get(CLICK_ID_HEADER),
            referer=headers.get("referer"),
            user_agent=headers.get("user-agent"),
            ip=self.client_ip(request),
        )

    def record_visit(
        self,
        code: str,
        *,
        click_id: str | None,
        referer: str | None,
        user_agent: str | None,
        ip: str | None,
    ) -> bool:
        """One visit's click, from its parts (a batched visit has no request of its own)."""
        event = LinkClicked(
            event_id=_event_id(click_id),
            code=code,
            occurred_at=datetime.now(UTC),
            referrer=bounded_header(referer),
            user_agent=bounded_header(user_agent),
            ip_hash=self.ip_hash(ip),
            request_id=request_id_var.get(),
        )
        return self.publisher.publish(event.key(), event.to_json())


def _event_id(click_id: str | None) -> str:
    """The gateway's id for this visit, so that the click it publishes itself
    if we answer too late (a stale replay) is the same event, counted once."""
    if click_id is not None and _CLICK_ID.fullmatch(click_id):
        return click_id
    return uuid.uuid4().hex
