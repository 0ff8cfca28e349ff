"""The dispatcher's queries: claim due deliveries, record what an attempt did.

Claiming is ``FOR UPDATE SKIP LOCKED`` plus a lease (``lease_until``):
replicas never take the same row at once, and a row whose replica died
mid-attempt is taken again once its lease has run out (the receiver may
then see the message twice: at-least-once, deduplicated by ``webhook-id``).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["AttemptResult", "Claimed", "Claims", "Schedule"]

_CANDIDATES = text(
    "SELECT d.id, d.endpoint_id FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id"
    " WHERE d.state = 'pending' AND d.next_attempt_at <= now()"
    " AND (d.lease_until IS NULL OR d.lease_until < now())"
    " AND (e.enabled OR d.event_type = 'webhook.test') AND NOT (d.endpoint_id = ANY(:busy))"
    " ORDER BY d.next_attempt_at LIMIT :scan FOR UPDATE OF d SKIP LOCKED"
)
_LEASE = text(
    "UPDATE deliveries d SET lease_until = now() + make_interval(secs => :lease)"
    " FROM endpoints e WHERE e.id = d.endpoint_id AND d.id = ANY(:ids)"
    " RETURNING d.id, d.endpoint_id, d.body, d.attempt_count, d.traceparent, e.url,"
    " e.secret, e.previous_secret, e.previous_secret_expires_at, now() AS now"
)
_ATTEMPT = text(
    "INSERT INTO attempts (delivery_id, outcome, status, latency_seconds, excerpt, error)"
    " VALUES (:id, :outcome, :status, :latency, :excerpt, :error)"
)
_DELIVERED = text(
    "UPDATE deliveries SET state = 'delivered', attempt_count = attempt_count + 1,"
    " lease_until = NULL, finished_at = now() WHERE id = :id"
)
_HEALTHY = text("UPDATE endpoints SET failing_since = NULL WHERE id = :endpoint_id")
_RETRY = text(
    "UPDATE deliveries SET attempt_count = attempt_count + 1, lease_until = NULL,"
    " state = CASE WHEN :give_up THEN 'failed' ELSE 'pending' END,"
    " finished_at = CASE WHEN :give_up THEN now() END,"
    " next_attempt_at = now() + make_interval(secs => :wait) WHERE id = :id"
)
# Failing since the first failure after the last success; disabled once
# that is long enough ago, and only by the first replica to see it.
_FAILING = text(
    "UPDATE endpoints SET failing_since = coalesce(failing_since, now()) WHERE id = :endpoint_id"
    " RETURNING extract(epoch FROM now() - failing_since) AS failing_seconds"
)
_DISABLE = text(
    "UPDATE endpoints SET enabled = false, disabled_at = now(), updated_at = now(),"
    " disabled_reason = :reason WHERE id = :endpoint_id AND enabled RETURNING id"
)
_BACKLOG = text(
    "SELECT count(*) AS owed, coalesce(extract(epoch FROM now() - min(next_attempt_at))"
    " FILTER (WHERE next_attempt_at <= now()), 0) AS oldest"
    " FROM deliveries WHERE state = 'pending'"
)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    endpoint_id: uuid.UUID
    body: str
    attempt: int  # this attempt's number, from 1
    traceparent: str | None
    url: str
    secrets: tuple[str, ...]  # the current secret, then the previous while it overlaps
    now: datetime


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: str
    status: int | None
    latency_seconds: float
    excerpt: str
    error: str | None


@dataclass(frozen=True, slots=True)
class Schedule:
    """Waits before each attempt (the first is "now"), with +-``jitter`` of each."""

    waits: Sequence[float]
    jitter: float

    def after(self, attempt: int) -> float | None:
        """The wait after failed attempt number ``attempt``; None: give up."""
        if attempt >= len(self.waits):
            return None
        wait = self.waits[attempt]
        return wait * random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311


class Claims:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self, in_flight: Mapping[uuid.UUID, int], per_endpoint: int, total: int, lease: float
    ) -> list[Claimed]:
        """Up to ``total`` due deliveries, keeping each endpoint within ``per_endpoint``
        requests counting those ``in_flight`` already."""
        busy = [e for e, n in in_flight.items() if n >= per_endpoint]
        rows = await self.session.execute(_CANDIDATES, {"busy": busy, "scan": max(total * 4, 50)})
        taken: list[uuid.UUID] = []
        counts = dict(in_flight)
        for delivery_id, endpoint_id in rows.all():
            if counts.get(endpoint_id, 0) < per_endpoint and len(taken) < total:
                counts[endpoint_id] = counts.get(endpoint_id, 0) + 1
                taken.append(delivery_id)
        if not taken:
            return []
        leased = await self.session.execute(_LEASE, {"ids": taken, "lease": lease})
        return [_claimed(row._mapping) for row in leased.all()]

    async def record(
        self, claimed: Claimed, result: AttemptResult, schedule: Schedule, disable_after: float
    ) -> bool:
        """Record one attempt and its consequences; True if it disabled the endpoint."""
        await self.session.execute(
            _ATTEMPT,
            {
                "id": claimed.id,
                "outcome": result.outcome,
                "status": result.status,
                "latency": result.latency_seconds,
                "excerpt": result.excerpt,
                "error": result.error,
            },
        )
        endpoint = {"endpoint_id": claimed.endpoint_id}
        if result.outcome == "delivered":
            await self.session.execute(_DELIVERED, {"id": claimed.id})
            await self.session.execute(_HEALTHY, endpoint)
            return False
        wait = schedule.after(claimed.attempt)
        await self.session.execute(
            _RETRY, {"id": claimed.id, "give_up": wait is None, "wait": wait or 0.0}
        )
        failing = (await self.session.execute(_FAILING, endpoint)).scalar_one()
        if float(failing) < disable_after:
            return False
        reason = (
            f"Every delivery failed for {timedelta(seconds=int(failing))}; the last attempt:"
            f" {result.error or f'HTTP {result.status}'}. Enable it again once it answers."
        )
        disabled = await self.session.execute(_DISABLE, {**endpoint, "reason": reason[:300]})
        return disabled.first() is not None

    async def backlog(self) -> tuple[int, float]:
        """(deliveries owed, seconds the oldest due one has waited)."""
        row = (await self.session.execute(_BACKLOG)).one()
        return int(row.owed), float(row.oldest)


def _claimed(row: RowMapping) -> Claimed:
    secrets = [str(row["secret"])]
    expires = row["previous_secret_expires_at"]
    now: datetime = row["now"]
    if row["previous_secret"] and isinstance(expires, datetime) and expires > now:
        secrets.append(str(row["previous_secret"]))
    return Claimed(
        id=row["id"],
        endpoint_id=row["endpoint_id"],
        body=str(row["body"]),
        attempt=row["attempt_count"] + 1,
        traceparent=row["traceparent"],
        url=str(row["url"]),
        secrets=tuple(secrets),
        now=now,
    )
