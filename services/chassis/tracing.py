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
  at the public edge each request's sampling is decided first, by the
  ``EdgeSampler`` (services/chassis/tracing_sampler.py), and a dropped one
  makes no span of the SDK's;
* the gateway's upstream calls, by ``client_span`` (the proxy's aiohttp
  session) and ``traced_transport`` (its httpx client), both in
  services/chassis/tracing_http.py;
* asyncpg and Redis, by their instrumentors, which patch the client classes;
* Kafka, by hand, in services/chassis/tracing_kafka.py: context per event
  in message headers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Iterable
from typing import NamedTuple

from opentelemetry import context, propagate, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.chassis.tracing_sampler import EdgeSampler, NoOrphanClients

__all__ = [
    "TracingMiddleware",
    "current_tracer",
    "start_tracing",
    "trace_with",
]

log = logging.getLogger(__name__)


class _Tracing(NamedTuple):
    tracer: trace.Tracer
    edge: EdgeSampler  # used only by the public edge's middleware


# Set once by start_tracing; None means tracing is off and every helper here
# returns at its first line.
_on: _Tracing | None = None


def current_tracer() -> trace.Tracer | None:
    """The process's tracer, or None while tracing is off."""
    return None if _on is None else _on.tracer


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
    queue), or None when the variables leave tracing off. ``environ`` decides
    on or off and the service name; the SDK reads the rest (endpoint,
    sampler, batching, resource attributes) from the process's environment.
    """
    exporter = _exporter(environ)
    if exporter is None:
        return None
    name = environ.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    trace_with(provider)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _instrument_libraries(provider)
    log.info("tracing on", extra={"sampler": provider.sampler.get_description()})
    return provider


def trace_with(provider: TracerProvider) -> None:
    """Make this process's spans through ``provider``, with our sampling installed on it.

    Its sampler (the SDK's, from ``OTEL_TRACES_SAMPLER``) is wrapped, and
    the edge's decision becomes its id generator, before any tracer exists:
    each tracer takes both from the provider when made. Called once, by
    ``start_tracing``; by tests with a provider of their own.
    """
    global _on  # noqa: PLW0603 - one provider per process, like the SDK's own global
    edge = EdgeSampler(provider.sampler)
    provider.sampler = NoOrphanClients(provider.sampler)
    provider.id_generator = edge  # a trace the edge keeps gets the id it was kept for
    _on = _Tracing(provider.get_tracer(__name__), edge)


def _instrument_libraries(provider: TracerProvider) -> None:
    # Class-level patches: clients built later by the lifespan are traced.
    # asyncpg rather than SQLAlchemy: the engine's create function is bound
    # at import, before this runs, and both would trace every query twice.
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415

    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument(tracer_provider=provider)


class TracingMiddleware:
    """A server span per HTTP request, named ``METHOD route-template``, never the raw path.

    Outermost, so the access line and everything below run inside the span.
    The route is known only after routing: the gateway's ``EdgeRouter`` sets
    ``scope["route_template"]``, Starlette sets ``scope["route"]``, both on
    this same scope, so the span is renamed once the app returns.

    ``trust_incoming=False`` at the public edge: a client's ``traceparent``
    would otherwise choose our trace ids and, through the parent-based
    sampler, force sampling of every request it sends (nor does the gateway
    forward it: gateway/proxy.py). There every request starts a trace, kept
    or dropped by the ``EdgeSampler`` before the SDK is asked for a span.

    A request whose span is not recorded (dropped at the edge, or behind it
    by a parent that was) runs in its context with the instrumentations
    switched off: its Redis commands and queries would make spans the
    sampler drops at once, a few µs each for nothing.

    ``on_shutdown`` runs when the app's lifespan has shut down (its last
    spans ended), before the server reports it: the place to flush, since
    uvicorn ends the process by re-raising SIGTERM and nothing after
    ``uvicorn.run()`` runs, atexit handlers included.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        trust_incoming: bool,
        untraced: Iterable[str] = (),
        on_shutdown: Callable[[], object] | None = None,
    ) -> None:
        self.app = app
        self.trust_incoming = trust_incoming
        # The headers the configured propagators read (traceparent, tracestate, baggage).
        self.fields = frozenset(f.encode() for f in propagate.get_global_textmap().fields)
        self.untraced = frozenset(untraced)  # probes and scrapes: noise, every second
        self.on_shutdown = on_shutdown
        # What a request that is not recorded runs in, its span added: a
        # request starts in a context of its own, empty, and the
        # instrumentations check this key (``suppress_instrumentation()`` sets it).
        self.unrecorded = context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True, context.Context())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self.on_shutdown is not None:
            await self.app(scope, receive, self._flushing(send, self.on_shutdown))
            return
        if _on is None or scope["type"] != "http" or scope["path"] in self.untraced:
            await self.app(scope, receive, send)
            return
        span = self._start_span(_on, scope)
        if not span.is_recording():
            token = context.attach(trace.set_span_in_context(span, self.unrecorded))
            try:
                await self.app(scope, receive, send)
            finally:
                context.detach(token)
            return
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
                    span.update_name(f"{scope['method']} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))

    def _start_span(self, tracing: _Tracing, scope: Scope) -> trace.Span:
        if self.trust_incoming:
            headers = {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in scope["headers"]
                if k in self.fields
            }
            parent = propagate.extract(headers)
        else:
            dropped = tracing.edge.decide()
            if dropped is not None:
                return trace.NonRecordingSpan(dropped)
            parent = context.Context()  # a root, which takes the trace id the edge kept
        method = scope["method"]
        return tracing.tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.scheme": scope.get("scheme", "http")},
        )

    @staticmethod
    def _flushing(send: Send, on_shutdown: Callable[[], object]) -> Send:
        async def send_after_flush(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                # Off the loop: an export can take as long as its timeout.
                await asyncio.to_thread(on_shutdown)
            await send(message)

        return send_after_flush


def _route_of(scope: Scope) -> str | None:
    template = scope.get("route_template")
    if template is not None:
        return str(template)
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None
