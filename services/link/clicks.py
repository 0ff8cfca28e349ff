"""Turning a served redirect into a ``LinkClicked`` event."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime

from starlette.requests import Request

from services.chassis.context import request_id_var
from services.chassis.events import LinkClicked
from services.chassis.kafka import EventPublisher

__all__ = ["ClickRecorder"]

# Bounds on what a client can make us carry downstream.
MAX_HEADER_CHARS = 512


class ClickRecorder:
    """Publishes one event per redirect, never waiting for the broker."""

    def __init__(self, publisher: EventPublisher, ip_hash_key: bytes | None) -> None:
        self.publisher = publisher
        self._key = ip_hash_key or secrets.token_bytes(32)

    def client_ip(self, request: Request) -> str | None:
        # The gateway replaces X-Real-IP with the address it saw; a direct
        # caller's own value only reaches this for internal traffic.
        return request.headers.get("x-real-ip") or (request.client.host if request.client else None)

    def ip_hash(self, ip: str | None) -> str | None:
        if ip is None:
            return None
        return hmac.new(self._key, ip.encode(), hashlib.sha256).hexdigest()[:32]

    def record(self, request: Request, code: str) -> bool:
        headers = request.headers
        event = LinkClicked(
            event_id=uuid.uuid4().hex,
            code=code,
            occurred_at=datetime.now(UTC),
            referrer=_bounded(headers.get("referer")),
            user_agent=_bounded(headers.get("user-agent")),
            ip_hash=self.ip_hash(self.client_ip(request)),
            request_id=request_id_var.get(),
        )
        return self.publisher.publish(event.key(), event.to_json())


def _bounded(value: str | None) -> str | None:
    return value[:MAX_HEADER_CHARS] if value else None
