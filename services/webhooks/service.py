"""The rules of the webhooks domain: an owner's endpoints and their deliveries.

Every operation is scoped to the caller: another user's endpoint is not
found (404), never forbidden, so ids reveal nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.chassis.db import session_scope
from services.chassis.urls import normalize_url
from services.webhooks.config import WebhooksSettings
from services.webhooks.deliveries import DeliveryRepository
from services.webhooks.exceptions import (
    DeliveryNotFound,
    EndpointNotFound,
    InvalidCursor,
    TooManyEndpoints,
)
from services.webhooks.fanout import owe
from services.webhooks.metrics import ENDPOINTS_DISABLED
from services.webhooks.models import Attempt, Delivery, DeliveryEvent, Endpoint
from services.webhooks.repository import EndpointRepository
from services.webhooks.schemas import EndpointCreate, EndpointUpdate, SecretRotate
from services.webhooks.signing import new_secret

__all__ = ["MAX_ENDPOINTS", "DeliveryView", "WebhookService", "parse_message_id"]

MAX_ENDPOINTS: Final = 20
TEST_EVENT: Final = "webhook.test"
DeliveryView = tuple[Delivery, list[Attempt]]


def parse_message_id(value: str) -> uuid.UUID | None:
    """The delivery id in a ``webhook-id`` (``msg_<32 hex>``), or None."""
    if not value.startswith("msg_"):
        return None
    try:
        return uuid.UUID(hex=value.removeprefix("msg_"))
    except ValueError:
        return None


def _unique(values: Sequence[str] | None) -> list[str] | None:
    return None if values is None else list(dict.fromkeys(values))


class WebhookService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: WebhooksSettings
    ) -> None:
        self.sessions = sessions
        self.settings = settings

    async def create(self, owner: uuid.UUID, data: EndpointCreate) -> Endpoint:
        url = normalize_url(data.url)
        async with session_scope(self.sessions) as session:
            endpoints = EndpointRepository(session)
            if await endpoints.count(owner) >= MAX_ENDPOINTS:
                raise TooManyEndpoints(f"An account has at most {MAX_ENDPOINTS} endpoints.")
            return await endpoints.add(
                Endpoint(
                    owner_id=owner,
                    url=url,
                    description=data.description,
                    event_types=_unique(data.event_types),
                    codes=_unique(data.codes),
                    secret=new_secret(),
                )
            )

    async def of_owner(self, owner: uuid.UUID) -> Sequence[Endpoint]:
        async with session_scope(self.sessions) as session:
            return await EndpointRepository(session).of_owner(owner)

    async def get(self, owner: uuid.UUID, endpoint_id: uuid.UUID) -> Endpoint:
        async with session_scope(self.sessions) as session:
            return await _endpoint(session, owner, endpoint_id)

    async def update(
        self, owner: uuid.UUID, endpoint_id: uuid.UUID, data: EndpointUpdate
    ) -> Endpoint:
        sent = data.model_fields_set
        url = normalize_url(data.url) if data.url is not None else None
        async with session_scope(self.sessions) as session:
            endpoint = await _endpoint(session, owner, endpoint_id)
            if url is not None:
                endpoint.url = url
            if data.event_types is not None:
                endpoint.event_types = _unique(data.event_types) or []
            if "codes" in sent:
                endpoint.codes = _unique(data.codes)
            if data.description is not None:
                endpoint.description = data.description
            if data.enabled is not None and data.enabled != endpoint.enabled:
                _switch(endpoint, data.enabled)
            endpoint.updated_at = datetime.now(UTC)
            await session.flush()
            return endpoint

    async def delete(self, owner: uuid.UUID, endpoint_id: uuid.UUID) -> None:
        async with session_scope(self.sessions) as session:
            endpoints = EndpointRepository(session)
            await endpoints.delete(await _endpoint(session, owner, endpoint_id))

    async def rotate(
        self, owner: uuid.UUID, endpoint_id: uuid.UUID, data: SecretRotate
    ) -> Endpoint:
        """A new secret; the old one keeps signing beside it for the overlap."""
        overlap = data.overlap_seconds
        if overlap is None:
            overlap = int(self.settings.rotation_overlap_seconds)
        async with session_scope(self.sessions) as session:
            endpoint = await _endpoint(session, owner, endpoint_id)
            endpoint.previous_secret = endpoint.secret if overlap else None
            expires = datetime.now(UTC) + timedelta(seconds=overlap)
            endpoint.previous_secret_expires_at = expires if overlap else None
            endpoint.secret = new_secret()
            endpoint.updated_at = datetime.now(UTC)
            await session.flush()
            return endpoint

    async def send_test(self, owner: uuid.UUID, endpoint_id: uuid.UUID) -> DeliveryView:
        """Owe the endpoint a ``webhook.test`` event, now (disabled or not: a test
        is how an owner checks a fixed receiver before enabling it again)."""
        event_id = uuid.uuid4().hex
        async with session_scope(self.sessions) as session:
            endpoint = await _endpoint(session, owner, endpoint_id)
            data = {"event_id": event_id, "endpoint_id": str(endpoint.id)}
            await owe(session, endpoint.id, TEST_EVENT, [(event_id, data, None)])
            claim = await session.get(DeliveryEvent, (endpoint.id, event_id))
            assert claim is not None  # owed just now
            found = await DeliveryRepository(session).get(endpoint.id, claim.delivery_id)
            assert found is not None
            return found, []

    async def deliveries(
        self, owner: uuid.UUID, endpoint_id: uuid.UUID, cursor: str | None, limit: int
    ) -> tuple[list[DeliveryView], str | None]:
        async with session_scope(self.sessions) as session:
            endpoint = await _endpoint(session, owner, endpoint_id)
            repository = DeliveryRepository(session)
            after = None
            if cursor is not None:
                after_id = parse_message_id(cursor)
                after = await repository.get(endpoint.id, after_id) if after_id else None
                if after is None:
                    raise InvalidCursor("The cursor is not one this list gave out.")
            page = await repository.page(endpoint.id, after, limit + 1)
            attempts = await repository.attempts([d.id for d in page[:limit]])
            views = [(d, attempts[d.id]) for d in page[:limit]]
            more = len(page) > limit
            return views, (f"msg_{page[limit - 1].id.hex}" if more else None)

    async def delivery(
        self, owner: uuid.UUID, endpoint_id: uuid.UUID, message: str, *, again: bool = False
    ) -> DeliveryView:
        """One delivery and its attempts; with ``again``, owed again first."""
        async with session_scope(self.sessions) as session:
            endpoint = await _endpoint(session, owner, endpoint_id)
            repository = DeliveryRepository(session)
            delivery_id = parse_message_id(message)
            found = await repository.get(endpoint.id, delivery_id) if delivery_id else None
            if found is None:
                raise DeliveryNotFound("This endpoint has no delivery with that id.")
            if again:
                await repository.redeliver(found)
            return found, (await repository.attempts([found.id]))[found.id]

    async def redeliver_failed(
        self, owner: uuid.UUID, endpoint_id: uuid.UUID, since: datetime
    ) -> int:
        async with session_scope(self.sessions) as session:
            endpoint = await _endpoint(session, owner, endpoint_id)
            return await DeliveryRepository(session).redeliver_failed(endpoint.id, since)


async def _endpoint(session: AsyncSession, owner: uuid.UUID, endpoint_id: uuid.UUID) -> Endpoint:
    found = await EndpointRepository(session).get(owner, endpoint_id)
    if found is None:
        raise EndpointNotFound("You have no endpoint with that id.")
    return found


def _switch(endpoint: Endpoint, enabled: bool) -> None:
    endpoint.enabled = enabled
    if enabled:
        # A fresh start: the next failure starts the auto-disable clock again.
        endpoint.disabled_reason = endpoint.disabled_at = endpoint.failing_since = None
        return
    endpoint.disabled_reason = "Disabled by its owner."
    endpoint.disabled_at = datetime.now(UTC)
    ENDPOINTS_DISABLED.labels("owner").inc()
