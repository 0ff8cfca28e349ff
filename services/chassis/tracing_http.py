"""The gateway's upstream calls: a client span each, and the context in their headers.

Part of the tracing set-up in services/chassis/tracing.py, kept apart as
services/chassis/tracing_kafka.py is: one transport for the outgoing side.
"""

from __future__ import annotations

import httpx
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from services.chassis.tracing import current_tracer

__all__ = ["traced_transport"]


def traced_transport(transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
    """``transport`` with a client span per request and the context in its headers.

    Ours rather than httpx's instrumentation (``AsyncOpenTelemetryTransport``):
    that one parses the URL again, sanitizes the method and records metrics
    on every call, sampled or not, about 130 µs a request on this machine,
    a fifth of the gateway's CPU per redirect; this one makes no span at all
    when the request is not recorded, and only passes the context on.
    """
    tracer = current_tracer()
    if tracer is None:
        return transport
    return _TracedTransport(transport, tracer)


class _TracedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, tracer: trace.Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        current = trace.get_current_span()
        if current.get_span_context().is_valid and not current.is_recording():
            # A request not sampled: the upstream must learn that, and follow
            # it; a client span of ours would tell it nothing more. (Outside
            # any request the SDK's span, dropped, still tells it so.)
            propagate.inject(request.headers)
            return await self._inner.handle_async_request(request)
        method = request.method
        url = request.url
        attributes: dict[str, AttributeValue] = {
            "http.request.method": method,
            "server.address": url.host,
            "server.port": url.port or 80,
            "url.full": str(url.copy_with(query=None)),  # queries can hold secrets
        }
        span = self._tracer.start_span(method, kind=SpanKind.CLIENT, attributes=attributes)
        with trace.use_span(span, end_on_exit=True, record_exception=True):
            propagate.inject(request.headers)
            response = await self._inner.handle_async_request(request)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()
