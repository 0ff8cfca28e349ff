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
* the gateway's upstream client, by ``traced_transport`` (``create_client``),
  a transport wrapper of our own;
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

import httpx
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.chassis.tracing_sampler import NoOrphanClients

__all__ = [
    "TracingMiddleware",
    "current_tracer",
    "start_tracing",
    "traced_transport",
]

log = logging.getLogger(__name__)

# Set once by start_tracing; None means tracing is off and every helper here
# returns at its first line.
_tracer: trace.Tracer | None = None


def current_tracer() -> trace.Tracer | None:
    """The process's tracer, or None while tracing is off."""
    return _tracer


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
    global _tracer  # noqa: PLW0603 - one provider per process, like the SDK's own global
    exporter = _exporter(environ)
    if exporter is None:
        return None
    name = environ.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    # The sampler the SDK read from OTEL_TRACES_SAMPLER(_ARG), wrapped before
    # any tracer exists (each tracer takes the provider's sampler when made).
    provider.sampler = NoOrphanClients(provider.sampler)
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

    Ours rather than httpx's instrumentation (``AsyncOpenTelemetryTransport``):
    that one parses the URL again, sanitizes the method and records metrics
    on every call, sampled or not, about 130 µs a request on this machine,
    a fifth of the gateway's CPU per redirect; this one costs a few µs
    when the request is not sampled.
    """
    if _tracer is None:
        return transport
    return _TracedTransport(transport, _tracer)


class _TracedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, tracer: trace.Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        method = request.method
        span = self._tracer.start_span(method, kind=SpanKind.CLIENT)
        with trace.use_span(span, end_on_exit=True, record_exception=True):
            if span.is_recording():
                url = request.url
                span.set_attributes(
                    {
                        "http.request.method": method,
                        "server.address": url.host,
                        "server.port": url.port or 80,
                        "url.full": str(url.copy_with(query=None)),  # queries can hold secrets
                    }
                )
            # Also when not sampled: the upstream must learn that, and follow it.
            propagate.inject(request.headers)
            response = await self._inner.handle_async_request(request)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class TracingMiddleware:
    """A server span per HTTP request, named ``METHOD route-template``, never the raw path.

    Outermost, so the access line and everything below run inside the span.
    The route is known only after routing: the gateway's ``EdgeRouter`` sets
    ``scope["route_template"]``, Starlette sets ``scope["route"]``, both on
    this same scope, so the span is renamed once the app returns.

    ``trust_incoming=False`` at the public edge: a client's ``traceparent``
    would otherwise choose our trace ids and, through the parent-based
    sampler, force sampling of every request it sends.

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = _tracer
        if scope["type"] == "lifespan" and self.on_shutdown is not None:
            await self.app(scope, receive, self._flushing(send, self.on_shutdown))
            return
        if tracer is None or scope["type"] != "http" or scope["path"] in self.untraced:
            await self.app(scope, receive, send)
            return
        parent = None
        if self.trust_incoming:
            headers = {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in scope["headers"]
                if k in self.fields
            }
            parent = propagate.extract(headers)
        else:
            # Dropped, not only ignored: forwarded upstream, a client's
            # tracestate or baggage would ride along with our traceparent.
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k not in self.fields]
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
