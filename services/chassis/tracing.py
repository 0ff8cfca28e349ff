"""Traces: the OpenTelemetry SDK, configured only by the standard ``OTEL_*`` variables.

``start_tracing`` runs once at serve time (never at import) and returns the
provider to shut down, which flushes what is still queued, on exit. Tracing
is *off* (no provider, no middleware, no spans: the hot path pays one
``None`` check) unless an exporter has somewhere to send to:

=====================================  =============================================
``OTEL_SDK_DISABLED=true``             off, whatever else is set
``OTEL_TRACES_EXPORTER``               ``otlp`` (default), ``console`` (stderr), ``none``
``OTEL_EXPORTER_OTLP_ENDPOINT``        base URL of an OTLP/HTTP receiver (+``/v1/traces``);
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or the full traces URL. ``otlp`` without either: off
``OTEL_SERVICE_NAME``                  the resource's service name (default: the process)
``OTEL_TRACES_SAMPLER`` (``_ARG``)     e.g. ``parentbased_traceidratio`` with ``0.01``
``OTEL_BSP_*``, ``OTEL_EXPORTER_*``    read by the SDK itself (batching, timeouts, headers)
=====================================  =============================================

The SDK's own default would export to ``localhost:4318`` with no endpoint
set; here no endpoint means no tracing, so a process without a collector
neither pays for spans nor logs export errors.

What is instrumented, and where (docs/observability-tracing.md):

* every process's outermost ASGI app, by ``TracingMiddleware`` (``serve``);
* the gateway's upstream client, by ``traced_transport`` (``create_client``);
* asyncpg and Redis, by their instrumentors, which patch the client classes;
* Kafka, by hand: ``message_context``/``message_headers`` on the producer's
  buffer (kafka.py) and ``consuming`` around a consumed batch.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import httpx
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "TracingMiddleware",
    "consuming",
    "message_context",
    "message_headers",
    "sending",
    "start_tracing",
    "traced_transport",
    "tracing_enabled",
]

log = logging.getLogger(__name__)

# Set once by start_tracing; None means tracing is off and every helper here
# returns at its first line.
_tracer: trace.Tracer | None = None

# A batch span links to at most this many of its events (the SDK keeps 128).
MAX_BATCH_LINKS = 64


def tracing_enabled() -> bool:
    return _tracer is not None


def _exporter(environ: os._Environ[str] | dict[str, str]) -> SpanExporter | None:
    """The exporter the variables ask for, or None when tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    kind = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter(out=sys.stderr)  # stdout carries the JSON logs
    if kind != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={kind!r}: use otlp, console or none")
    if not (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    ):
        return None
    # Imported here: the exporter pulls in protobuf and requests, which a
    # process with tracing off should not load.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    return OTLPSpanExporter()  # endpoint, headers, timeout, compression: from OTEL_*


def start_tracing(
    service: str, environ: os._Environ[str] | dict[str, str] = os.environ
) -> TracerProvider | None:
    """Install the global tracer provider and instrument the client libraries.

    Returns the provider (call ``shutdown()`` on exit: it flushes the batch
    queue), or None when the variables leave tracing off.
    """
    global _tracer  # noqa: PLW0603 - one provider per process, like the SDK's own global
    exporter = _exporter(environ)
    if exporter is None:
        return None
    name = environ.get("OTEL_SERVICE_NAME") or service
    # The sampler comes from OTEL_TRACES_SAMPLER(_ARG), read by the SDK.
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _instrument_libraries(provider)
    _tracer = provider.get_tracer(__name__)
    log.info("tracing on", extra={"sampler": type(provider.sampler).__name__})
    return provider


def _instrument_libraries(provider: TracerProvider) -> None:
    # Class-level patches: clients built later by the lifespan are traced.
    # asyncpg rather than SQLAlchemy: the engine's create function is bound
    # at import, before this runs, and both would trace every query twice.
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415

    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument(tracer_provider=provider)


def traced_transport(transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
    """``transport`` with a client span per request and the context in its headers.

    Wraps any transport (the gateway's is aiohttp's), where the instrumentor's
    global patch covers only httpx's own.
    """
    if _tracer is None:
        return transport
    from opentelemetry.instrumentation.httpx import (  # noqa: PLC0415
        AsyncOpenTelemetryTransport,
    )

    return AsyncOpenTelemetryTransport(transport)


class TracingMiddleware:
    """A server span per HTTP request, named ``METHOD route-template``, never the raw path.

    Outermost, so the access line and everything below run inside the span.
    The route is known only after routing: the gateway's ``EdgeRouter`` sets
    ``scope["route_template"]``, Starlette sets ``scope["route"]``, both on
    this same scope, so the span is renamed once the app returns.

    ``trust_incoming=False`` at the public edge: a client's ``traceparent``
    would otherwise choose our trace ids and, through the parent-based
    sampler, force sampling of every request it sends.
    """

    def __init__(self, app: ASGIApp, *, trust_incoming: bool, untraced: Iterable[str] = ()) -> None:
        self.app = app
        self.trust_incoming = trust_incoming
        self.untraced = frozenset(untraced)  # probes and scrapes: noise, every second

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = _tracer
        if tracer is None or scope["type"] != "http" or scope["path"] in self.untraced:
            await self.app(scope, receive, send)
            return
        parent = None
        if self.trust_incoming:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            parent = propagate.extract(headers)
        method = scope["method"]
        span = tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.scheme": scope.get("scheme", "http")},
        )
        status = 500

        async def send_traced(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with trace.use_span(span, end_on_exit=True, record_exception=True):
            try:
                await self.app(scope, receive, send_traced)
            finally:
                route = _route_of(scope)
                if route is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))


def _route_of(scope: Scope) -> str | None:
    template = scope.get("route_template")
    if template is not None:
        return str(template)
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def message_context(topic: str) -> SpanContext | None:
    """A "create" span for one event, child of the current span; its context.

    Called when an event is queued, inside the request that caused it: the
    batch is sent later by a background task whose context is empty, so the
    context travels with the event (OpenTelemetry's messaging conventions
    call this the creation context). None outside any trace.
    """
    if _tracer is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    span = _tracer.start_span(
        f"create {topic}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "create",
            "messaging.destination.name": topic,
        },
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


@contextmanager
def sending(topic: str, contexts: Sequence[SpanContext | None]) -> Iterator[None]:
    """A span around one batch sent to the broker, linked to its events' creations."""
    if _tracer is None:
        yield
        return
    links = [Link(c) for c in contexts if c is not None and c.trace_flags.sampled]
    with _tracer.start_as_current_span(
        f"send {topic}",
        context=Context(),  # a batch belongs to no single request
        kind=SpanKind.CLIENT,
        links=links[:MAX_BATCH_LINKS],
        attributes=_batch_attributes(topic, "send", len(contexts)),
    ):
        yield


@contextmanager
def consuming(topic: str, headers: Sequence[Sequence[tuple[str, bytes]] | None]) -> Iterator[None]:
    """Spans for one consumed batch; ``headers`` are its records' Kafka headers.

    One batch span (a root: a batch mixes many requests) holds the work, the
    database writes included, and links to the events. Then, per event, a
    "process" span in the trace of the request that caused it, child of its
    creation context, covering the batch's time and linked to the batch span:
    so the redirect's trace reaches the consumer, one span per click.
    """
    if _tracer is None:
        yield
        return
    parents = [_remote_context(h) for h in headers]
    started = time.time_ns()
    links = [Link(p) for p in parents if p is not None and p.trace_flags.sampled]
    attributes = _batch_attributes(topic, "process", len(headers))
    with _tracer.start_as_current_span(
        f"process {topic}",
        context=Context(),
        kind=SpanKind.CONSUMER,
        links=links[:MAX_BATCH_LINKS],
        attributes=attributes,
    ) as batch:
        yield
    batch_link = [Link(batch.get_span_context())]
    for parent in parents:
        if parent is not None:
            _tracer.start_span(
                f"process {topic}",
                context=trace.set_span_in_context(NonRecordingSpan(parent)),
                kind=SpanKind.CONSUMER,
                links=batch_link,
                start_time=started,
                attributes=attributes,
            ).end()


def _remote_context(headers: Sequence[tuple[str, bytes]] | None) -> SpanContext | None:
    if not headers:
        return None
    carrier = {key: value.decode("latin-1") for key, value in headers}
    context = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    return context if context.is_valid else None


def _batch_attributes(topic: str, operation: str, count: int) -> dict[str, str | int]:
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": operation,
        "messaging.destination.name": topic,
        "messaging.batch.message_count": count,
    }
