"""Queries on an endpoint's deliveries for its owner: the log, and replays; flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.webhooks.models import Attempt, Delivery

__all__ = ["DeliveryRepository"]

# Sent again from the start of the schedule, under the same webhook-id.
_AGAIN = {
    "state": "pending",
    "attempt_count": 0,
    "next_attempt_at": text("now()"),
    "lease_until": None,
    "finished_at": None,
}


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, delivery: Delivery) -> Delivery:
        self.session.add(delivery)
        await self.session.flush()
        await self.session.refresh(delivery)
        return delivery

    async def get(self, endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> Delivery | None:
        found = await self.session.get(Delivery, delivery_id)
        return found if found is not None and found.endpoint_id == endpoint_id else None

    async def page(
        self, endpoint_id: uuid.UUID, after: Delivery | None, limit: int
    ) -> Sequence[Delivery]:
        """Newest first; ``after`` is the last delivery of the previous page."""
        query = select(Delivery).where(Delivery.endpoint_id == endpoint_id)
        if after is not None:
            query = query.where(
                tuple_(Delivery.created_at, Delivery.id) < tuple_(after.created_at, after.id)
            )
        query = query.order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit)
        return (await self.session.scalars(query)).all()

    async def attempts(self, delivery_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Attempt]]:
        found: dict[uuid.UUID, list[Attempt]] = {d: [] for d in delivery_ids}
        if delivery_ids:
            query = (
                select(Attempt)
                .where(Attempt.delivery_id.in_(delivery_ids))
                .order_by(Attempt.attempted_at, Attempt.id)
            )
            for attempt in await self.session.scalars(query):
                found[attempt.delivery_id].append(attempt)
        return found

    async def redeliver(self, delivery: Delivery) -> None:
        await self.session.execute(
            update(Delivery).where(Delivery.id == delivery.id).values(**_AGAIN)
        )
        await self.session.refresh(delivery)

    async def redeliver_failed(self, endpoint_id: uuid.UUID, since: datetime) -> int:
        """Every delivery of the endpoint given up on and created since ``since``."""
        statement = (
            update(Delivery)
            .where(
                Delivery.endpoint_id == endpoint_id,
                Delivery.state == "failed",
                Delivery.created_at >= since,
            )
            .values(**_AGAIN)
            .returning(Delivery.id)
        )
        return len((await self.session.scalars(statement)).all())
