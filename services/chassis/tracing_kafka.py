"""Trace context across Kafka: per event, in the message headers.

Events are batched on both sides, and a batch mixes many requests, so the
context cannot ride on the batch: the producer captures it per event when
the event is queued (inside the request), the consumer reads it back per
record. Following OpenTelemetry's messaging conventions:

    request span -> "create clicks" (PRODUCER, one per event, ended at once)
                      -> "send clicks" (CLIENT, one per batch, links to the creates)
                      -> "process clicks" (CONSUMER, one per event, its child)
                           links to "process clicks" (the batch, with the
                           database writes as children, linked to each event)

A batch span is a child of its first sampled event, so it is kept exactly
when some event in it was (with parent-based sampling, a root would be kept
at the sampling ratio, independently of its events). A batch with none is
sent with no span at all, and processed under a root span.

All of it costs a ``None`` check while tracing is off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind

from services.chassis.tracing import current_tracer

__all__ = [
    "consuming",
    "context_of_traceparent",
    "message_context",
    "message_headers",
    "sending",
    "traceparent_of",
]

Headers = Sequence[tuple[str, bytes]]
# A batch span links to at most this many of its events (the SDK keeps 128).
MAX_BATCH_LINKS = 64
BATCH_SIZE = "messaging.batch.message_count"


def message_context(topic: str) -> SpanContext | None:
    """A "create" span for one event, child of the current span; its context.

    Called when an event is queued, inside the request that caused it: the
    batch is sent later by a background task whose context is empty, so the
    context travels with the event (OpenTelemetry's messaging conventions
    call this the creation context). None outside any trace, and for a
    request the sampler dropped: with parent-based sampling nothing after it
    would be recorded anyway, so the 99 % of redirects that are not kept at
    1 % sampling pay for no span and no header.
    """
    tracer = current_tracer()
    if tracer is None or not trace.get_current_span().get_span_context().trace_flags.sampled:
        return None
    span = tracer.start_span(
        f"create {topic}", kind=SpanKind.PRODUCER, attributes=_attributes(topic, "create")
    )
    span.end()
    return span.get_span_context()


def message_headers(context: SpanContext | None) -> list[tuple[str, bytes]] | None:
    """Kafka headers carrying ``context`` (``traceparent``, ``tracestate``)."""
    if context is None:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(NonRecordingSpan(context)))
    return [(key, value.encode()) for key, value in carrier.items()]


def traceparent_of(context: SpanContext | None) -> str | None:
    """``context`` as a W3C ``traceparent`` value, to be stored with an event
    sent later by another process (the outbox); None for None."""
    headers = message_headers(context)
    return None if headers is None else dict(headers)["traceparent"].decode()


def context_of_traceparent(traceparent: str | None) -> SpanContext | None:
    """The creation context stored by ``traceparent_of``."""
    return None if traceparent is None else _remote_context([("traceparent", traceparent.encode())])


@contextmanager
def sending(topic: str, contexts: Sequence[SpanContext | None]) -> Iterator[None]:
    """A span around one batch sent to the broker, linked to its events' creations.

    None for a batch with no sampled event: as a root, a client span would be
    dropped by the sampler anyway (background chores start no traces); at
    1 % sampling that is two batches in three of 40 events.
    """
    tracer = current_tracer()
    if tracer is None:
        yield
        return
    sampled = [c for c in contexts if c is not None and c.trace_flags.sampled]
    if not sampled:
        yield
        return
    with tracer.start_as_current_span(
        f"send {topic}",
        context=_first(sampled),
        kind=SpanKind.CLIENT,
        links=[Link(c) for c in sampled[:MAX_BATCH_LINKS]],
        attributes={**_attributes(topic, "send"), BATCH_SIZE: len(contexts)},
    ):
        yield


@contextmanager
def consuming(topic: str, headers: Sequence[Headers | None]) -> Iterator[None]:
    """Spans for one consumed batch; ``headers`` are its records' Kafka headers.

    One batch span holds the work, the database writes included, and links
    to the events. Then, per event, a
    "process" span in the trace of the request that caused it, child of its
    creation context, covering the batch's time and linked to the batch span:
    so the redirect's trace reaches the consumer, one span per click.
    """
    tracer = current_tracer()
    if tracer is None:
        yield
        return
    parents = [p for h in headers if (p := _remote_context(h)) is not None]
    sampled = [p for p in parents if p.trace_flags.sampled]
    started = time.time_ns()
    with tracer.start_as_current_span(
        f"process {topic}",
        context=_first(sampled),
        kind=SpanKind.CONSUMER,
        links=[Link(p) for p in sampled[:MAX_BATCH_LINKS]],
        attributes={**_attributes(topic, "process"), BATCH_SIZE: len(headers)},
    ) as batch:
        yield
    batch_link = [Link(batch.get_span_context())]
    attributes = _attributes(topic, "process")
    for parent in parents:
        tracer.start_span(
            f"process {topic}",
            context=trace.set_span_in_context(NonRecordingSpan(parent)),
            kind=SpanKind.CONSUMER,
            links=batch_link,
            start_time=started,
            attributes=attributes,
        ).end()


def _first(sampled: Sequence[SpanContext]) -> Context:
    """The context a batch span starts in: its first sampled event's, else none."""
    if not sampled:
        return Context()  # a root, whatever the task's context holds
    return trace.set_span_in_context(NonRecordingSpan(sampled[0]))


def _remote_context(headers: Headers | None) -> SpanContext | None:
    if not headers:
        return None
    carrier = {key: value.decode("latin-1") for key, value in headers}
    context = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    return context if context.is_valid else None


def _attributes(topic: str, operation: str) -> dict[str, str | int]:
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": operation,
        "messaging.destination.name": topic,
    }
