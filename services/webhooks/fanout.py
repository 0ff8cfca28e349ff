"""What a consumed batch owes: deliveries, recorded before its offsets are committed.

Each writer runs one transaction per batch (services/chassis/consumer.py
commits the offsets only after it). An event is owed to an endpoint at most
once: the pair (endpoint, event id) is claimed in ``delivery_events`` and
only new claims make deliveries, so a batch consumed again after a crash
between the write and the commit owes nothing twice.

Events go only to endpoints of the link's owner. Clicks learn the owner
from ``link_owners`` (kept from the ``links`` topic); a click of a code not
known yet (its ``link.created`` is still on its way: the topics are read by
separate groups) is parked, and fanned out when the link's owner arrives;
parked clicks of a link that never shows up are pruned after
``WEBHOOKS_PARKED_CLICK_HOURS`` (db_rows_pruned_total{table="parked_clicks"}).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import trace
from sqlalchemy import insert as plain_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningInsert

from services.chassis.arrays import columns, insert_from_arrays
from services.chassis.db import session_scope
from services.chassis.deadletter import DeadLetters, Poisoned
from services.chassis.decoding import PoisonMessage
from services.chassis.tracing_kafka import traceparent_of
from services.webhooks.metrics import EVENTS_FANNED_OUT
from services.webhooks.models import Delivery, DeliveryEvent, Endpoint
from services.webhooks.payloads import (
    Click,
    LinkEvent,
    body,
    click_data,
    decode_click_record,
    link_data,
)
from services.webhooks.repository import EndpointRepository, LinkRepository

__all__ = ["ClickFanout", "ClickRecords", "LinkFanout", "delivery_id_of", "owe"]

E = TypeVar("E", Click, LinkEvent)
CLICKED = "link.clicked"
# (source event id, its data in the payload, its traceparent)
Event = tuple[str, dict[str, Any], str | None]


@dataclass(frozen=True, slots=True)
class Owed:
    """One event of one owner's link, ready to be owed to that owner's endpoints."""

    event_id: str
    code: str
    owner_id: uuid.UUID
    data: dict[str, Any]
    traceparent: str | None  # the trace of the request that caused the event


def _first_of_each(events: Sequence[E]) -> list[E]:
    first: dict[str, E] = {}
    for event in events:
        first.setdefault(event.event_id, event)
    return list(first.values())


def _traceparent(events: Sequence[Event]) -> str | None:
    """The trace a delivery continues: its first event's, else the consumed batch's."""
    for _, _, traceparent in events:
        if traceparent is not None:
            return traceparent
    context = trace.get_current_span().get_span_context()
    return traceparent_of(context) if context.is_valid else None


async def owe(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    event_type: str,
    events: Sequence[Event],
    *,
    batch_max: int = 1,
) -> int:
    """Owe ``events`` (id, data, traceparent) to the endpoint, ``batch_max`` to a
    delivery; how many were new."""
    new = 0
    for start in range(0, len(events), batch_max):
        chunk = events[start : start + batch_max]
        delivery_id = delivery_id_of(endpoint_id, [e for e, _, _ in chunk])
        rows = [(endpoint_id, e, delivery_id) for e, _, _ in chunk]
        fresh = set(await session.scalars(_claims(), columns(_CLAIM_COLUMNS, rows)))
        owed = [event for event in chunk if event[0] in fresh]
        data = [d for _, d, _ in owed]
        if not data:
            continue
        content = body(event_type, {"clicks": data} if event_type == CLICKED else data[0])
        await session.execute(
            plain_insert(Delivery).values(
                id=delivery_id,
                endpoint_id=endpoint_id,
                event_type=event_type,
                body=content,
                traceparent=_traceparent(owed),
            )
        )
        new += len(data)
    return new


def delivery_id_of(endpoint_id: uuid.UUID, event_ids: Sequence[str]) -> uuid.UUID:
    """A delivery's id (its ``webhook-id``), from what it carries: the same
    events owed to the same endpoint again get the same id.

    Owing is idempotent (the claims), so this matters only when the claims
    are gone: after a restore from a backup, the events since it are owed
    again (docs/disaster-recovery.md), and a receiver that deduplicates by
    ``webhook-id`` then sees the same id for a message it already has. A
    link event is a delivery of its own, so its id always comes back; a
    batch of clicks does when the batch has the same clicks.

    Never two deliveries with one id: a second chunk of the same events for
    the same endpoint finds them all claimed and makes no delivery, and a
    delivery and its claims are pruned together (services/webhooks/pruning.py).
    """
    return uuid.uuid5(endpoint_id, ",".join(sorted(event_ids)))


async def _fan_out(
    session: AsyncSession, event_type: str, events: Sequence[Owed], batch_max: int
) -> int:
    owners = sorted({e.owner_id for e in events})
    endpoints = await EndpointRepository(session).subscribed(owners, event_type)
    new = 0
    for endpoint in sorted(endpoints, key=lambda e: e.id):
        mine = [e for e in events if e.owner_id == endpoint.owner_id and _wants(endpoint, e.code)]
        triples = [(e.event_id, e.data, e.traceparent) for e in mine]
        new += await owe(session, endpoint.id, event_type, triples, batch_max=batch_max)
    return new


_CLAIM_COLUMNS = ("endpoint_id", "event_id", "delivery_id")


@functools.cache
def _claims() -> ReturningInsert[str]:
    """Claim (endpoint, event) pairs; the events not claimed before. One text
    for any number of pairs (services/chassis/arrays.py)."""
    statement = insert_from_arrays(DeliveryEvent.__table__, _CLAIM_COLUMNS)  # type: ignore[arg-type]
    return statement.on_conflict_do_nothing().returning(DeliveryEvent.event_id)


def _wants(endpoint: Endpoint, code: str) -> bool:
    return endpoint.codes is None or code in endpoint.codes


class _Writer:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], batch_max: int) -> None:
        self.sessions = sessions
        self.batch_max = batch_max  # clicks per delivery


class ClickFanout(_Writer):
    """Owes each click to its link owner's ``link.clicked`` endpoints, batched per endpoint."""

    async def write(self, batch: Sequence[Click]) -> None:
        clicks = _first_of_each(batch)
        async with session_scope(self.sessions) as session:
            links = LinkRepository(session)
            owners = await links.owners(sorted({c.code for c in clicks}))
            unknown = sorted({c.code for c in clicks if c.code not in owners})
            if unknown:  # learned meanwhile? Only a look under the lock can tell.
                await links.lock(unknown)
                owners |= await links.owners(unknown)
            parked = [c for c in clicks if c.code not in owners]
            await links.park(
                [
                    {
                        "event_id": c.event_id,
                        "code": c.code,
                        "data": click_data(c),
                        "traceparent": c.traceparent,
                    }
                    for c in parked
                ]
            )
            known = [
                Owed(c.event_id, c.code, owner, click_data(c), c.traceparent)
                for c in clicks
                if (owner := owners.get(c.code)) is not None
            ]
            new = await _fan_out(session, CLICKED, known, self.batch_max)
        EVENTS_FANNED_OUT.labels(CLICKED).inc(new)


class ClickRecords:
    """The click topic's records, read (decoded) only where a delivery could be owed.

    Most clicks belong to owners with no ``link.clicked`` endpoint, and
    reading every click cost this service as much CPU as a redirect's
    counting costs analytics (docs/performance.md). A record's key is its
    code (the producers' contract: partitioned by code), so two queries per
    batch (the codes' owners, which of them subscribe) say which records
    matter before any is read: those of subscribed owners, of codes whose
    owner is not known yet (parked, as before), and any without a key.
    Whether an endpoint created meanwhile gets such a click is the same
    race as the one between its creation and any batch's transaction.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        fanout: ClickFanout,
        dead_letters: DeadLetters,
    ) -> None:
        self.sessions = sessions
        self.fanout = fanout
        self.dead_letters = dead_letters

    async def write(self, records: Sequence[Any]) -> None:
        wanted = await self._wanted(records)
        clicks: list[Click] = []
        poison: list[Poisoned] = []
        for record in wanted:
            try:
                clicks.append(decode_click_record(record))
            except PoisonMessage as exc:
                poison.append((record, exc))
        if poison:
            await self.dead_letters.set_aside(poison)  # logged and counted: no topic
        if clicks:
            await self.fanout.write(clicks)

    async def _wanted(self, records: Sequence[Any]) -> list[Any]:
        codes = {record.key: _key_code(record.key) for record in records if record.key}
        async with session_scope(self.sessions) as session:
            owners = await LinkRepository(session).owners(sorted(set(codes.values())))
            owner_ids = sorted({owner for owner in owners.values() if owner is not None})
            endpoints = await EndpointRepository(session).subscribed(owner_ids, CLICKED)
        subscribed = {endpoint.owner_id for endpoint in endpoints}
        ignored = {code for code, owner in owners.items() if owner not in subscribed}
        return [r for r in records if not r.key or codes[r.key] not in ignored]


def _key_code(key: bytes) -> str:
    return key.decode("utf-8", errors="replace")


class LinkFanout(_Writer):
    """Learns link owners, owes link changes, and releases the clicks that waited for them."""

    async def write(self, batch: Sequence[LinkEvent]) -> None:
        events = _first_of_each(batch)
        latest: dict[str, LinkEvent] = {}
        for event in events:  # one partition per code: batch order is their order
            known = latest.get(event.code)
            if known is None or event.occurred_at >= known.occurred_at:
                latest[event.code] = event
        counts: dict[str, int] = {}
        async with session_scope(self.sessions) as session:
            links = LinkRepository(session)
            await links.lock(list(latest))
            await links.learn(
                [(e.code, e.owner_id, e.occurred_at) for e in sorted(latest.values(), key=_code)]
            )
            # One lookup of subscribed endpoints per type, not per event: a
            # query per link change was 0.7 ms of CPU per creation (make bench).
            owed: dict[str, list[Owed]] = {}
            for event in events:
                if event.owner_id is not None:
                    owed.setdefault(event.type, []).append(
                        Owed(
                            event.event_id,
                            event.code,
                            event.owner_id,
                            link_data(event),
                            event.traceparent,
                        )
                    )
            for event_type, changes in owed.items():
                counts[event_type] = await _fan_out(session, event_type, changes, 1)
            released = await links.unpark(sorted(latest))
            clicks = [
                Owed(p.event_id, p.code, owner, p.data, p.traceparent)
                for p in released
                if (owner := latest[p.code].owner_id) is not None
            ]
            counts[CLICKED] = await _fan_out(session, CLICKED, clicks, self.batch_max)
        for event_type, n in counts.items():
            EVENTS_FANNED_OUT.labels(event_type).inc(n)


def _code(event: LinkEvent) -> str:
    return event.code
