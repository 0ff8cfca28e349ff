"""Delivering what is owed: claim due deliveries, POST them, record each attempt.

The consumers only write rows; this loop is the only thing that calls out,
so a slow or dead endpoint can hold back nothing but its own deliveries:

- at most ``WEBHOOKS_ENDPOINT_CONCURRENCY`` requests in flight per endpoint
  (and ``WEBHOOKS_MAX_IN_FLIGHT`` in all): an endpoint at its limit is not
  even claimed from, so its backlog never occupies another's slots;
- every request is bounded by the egress policy's timeouts.

Replicas share the work through ``FOR UPDATE SKIP LOCKED`` and leases
(services/webhooks/claims.py). The delivery span continues the trace of
the consumed batch that owed it, and the request carries its ``traceparent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime

from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanKind
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.chassis.db import session_scope
from services.chassis.outage import Outage
from services.chassis.tasks import finish_within
from services.chassis.tracing import current_tracer
from services.chassis.tracing_kafka import context_of_traceparent
from services.webhooks.claims import AttemptResult, Claimed, Claims, Schedule
from services.webhooks.config import WebhooksSettings
from services.webhooks.egress import Egress, EgressPolicy, Outcome
from services.webhooks.metrics import (
    BACKLOG,
    BACKLOG_OLDEST,
    DELIVERIES,
    DELIVERY_SECONDS,
    ENDPOINTS_DISABLED,
    attempt_bucket,
    outcome_of,
)
from services.webhooks.signing import message_id, signed_headers

__all__ = ["Dispatcher", "egress_policy"]

log = logging.getLogger(__name__)

BACKLOG_EVERY_SECONDS = 5.0


def egress_policy(settings: WebhooksSettings) -> EgressPolicy:
    return EgressPolicy(
        allow_private=settings.allow_private_targets,
        allowed_networks=settings.allowed_networks,
        connect_timeout=settings.connect_timeout_seconds,
        total_timeout=settings.total_timeout_seconds,
    )


class Dispatcher:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: WebhooksSettings
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._schedule = Schedule(settings.retry_schedule_seconds, settings.retry_jitter)
        self._egress = Egress(egress_policy(settings))
        self._in_flight: dict[uuid.UUID, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._outage = Outage(log, "dispatcher database")
        self._backlog_at = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhooks:dispatcher")

    async def stop(self, timeout_seconds: float) -> None:
        """Stop claiming; let attempts in flight finish within the bound (a cut one is
        retried by whoever claims it once its lease runs out)."""
        self._stopping = True
        self._wakeup.set()
        await finish_within(self._task, timeout_seconds / 2)
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=timeout_seconds / 2)
            for task in pending:
                task.cancel()
        await self._egress.aclose()

    async def _run(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            claimed = await self._claim()
            for delivery in claimed:
                self._in_flight[delivery.endpoint_id] = (
                    self._in_flight.get(delivery.endpoint_id, 0) + 1
                )
                task = asyncio.create_task(self._deliver(delivery))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            await self._report_backlog()
            if not claimed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wakeup.wait(), self._settings.poll_interval_seconds
                    )

    async def _claim(self) -> list[Claimed]:
        room = self._settings.max_in_flight - len(self._tasks)
        if room <= 0:
            return []
        try:
            async with session_scope(self._sessions) as session:
                claimed = await Claims(session).claim(
                    self._in_flight,
                    self._settings.endpoint_concurrency,
                    room,
                    self._settings.lease_seconds,
                )
        except Exception as exc:
            self._outage.failed(exc)
            return []
        self._outage.recovered()
        return claimed

    async def _deliver(self, delivery: Claimed) -> None:
        try:
            outcome = await self._send(delivery)
            result = AttemptResult(
                outcome_of(outcome.status, outcome.error),
                outcome.status,
                outcome.latency_seconds,
                outcome.excerpt,
                outcome.error,
            )
            DELIVERIES.labels(result.outcome, attempt_bucket(delivery.attempt)).inc()
            DELIVERY_SECONDS.labels(result.outcome).observe(result.latency_seconds)
            async with session_scope(self._sessions) as session:
                disabled = await Claims(session).record(
                    delivery, result, self._schedule, self._settings.disable_after_seconds
                )
            if disabled:
                ENDPOINTS_DISABLED.labels("failing").inc()
                log.warning("endpoint disabled", extra={"endpoint_id": str(delivery.endpoint_id)})
        except Exception:
            # The lease runs out and the delivery is attempted again.
            log.exception("delivery not recorded", extra={"delivery_id": str(delivery.id)})
        finally:
            left = self._in_flight.get(delivery.endpoint_id, 1) - 1
            if left:
                self._in_flight[delivery.endpoint_id] = left
            else:
                self._in_flight.pop(delivery.endpoint_id, None)
            self._wakeup.set()

    async def _send(self, delivery: Claimed) -> Outcome:
        content = delivery.body.encode()
        at = datetime.now(UTC)
        headers = signed_headers(delivery.secrets, message_id(delivery.id), at, content)
        tracer = current_tracer()
        if tracer is None:
            return await self._egress.post(delivery.url, content, headers)
        parent = context_of_traceparent(delivery.traceparent)
        context = trace.set_span_in_context(NonRecordingSpan(parent)) if parent else None
        with tracer.start_as_current_span(
            "POST webhook",
            context=context,
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "POST",
                "webhook.id": message_id(delivery.id),
                "webhook.attempt": delivery.attempt,
            },
        ) as span:
            propagate.inject(headers)
            outcome = await self._egress.post(delivery.url, content, headers)
            if outcome.status is not None:
                span.set_attribute("http.response.status_code", outcome.status)
            if outcome.error is not None:
                span.set_attribute("error.type", outcome.error)
            return outcome

    async def _report_backlog(self) -> None:
        now = time.monotonic()
        if now - self._backlog_at < BACKLOG_EVERY_SECONDS:
            return
        self._backlog_at = now
        with contextlib.suppress(Exception):  # the claim's outage already says why
            async with session_scope(self._sessions) as session:
                owed, oldest = await Claims(session).backlog()
            BACKLOG.set(owed)
            BACKLOG_OLDEST.set(oldest)
