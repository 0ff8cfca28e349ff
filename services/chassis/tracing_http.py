"""The gateway's upstream calls: a client span each, and the context in their headers.

Part of the tracing set-up in services/chassis/tracing.py, kept apart as
services/chassis/tracing_kafka.py is: the outgoing side. Two clients use it:
httpx (``traced_transport``: the gateway's own calls, API keys, keys,
documents) and the proxy's aiohttp session (``client_span``).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

import httpx
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from services.chassis.tracing import current_tracer

__all__ = ["client_span", "record_status", "traced_transport"]


@contextmanager
def client_span(
    tracer: trace.Tracer | None,
    method: str,
    url: str,
    carrier: MutableMapping[str, str],
) -> Iterator[Span | None]:
    """A client span for one call to ``url`` (None when not recorded), its
    context put in ``carrier``; the URL is parsed only for a recorded span.

    No span at all when the request is not recorded: the upstream must learn
    that and follow it, which the context alone tells it, and making a span
    for nothing cost a fifth of the gateway's CPU per redirect with httpx's
    own instrumentation (it parses the URL again, sanitizes the method and
    records metrics on every call).
    """
    if tracer is None:
        yield None
        return
    current = trace.get_current_span()
    if current.get_span_context().is_valid and not current.is_recording():
        # (Outside any request the SDK's span, dropped, still tells it so.)
        propagate.inject(carrier)
        yield None
        return
    parsed = httpx.URL(url)
    attributes: dict[str, AttributeValue] = {
        "http.request.method": method,
        "server.address": parsed.host,
        "server.port": parsed.port or 80,
        "url.full": str(parsed.copy_with(query=None)),  # queries can hold secrets
    }
    span = tracer.start_span(method, kind=SpanKind.CLIENT, attributes=attributes)
    with trace.use_span(span, end_on_exit=True, record_exception=True):
        propagate.inject(carrier)
        yield span


def record_status(span: Span | None, status: int) -> None:
    """The answer's status on its client span; a 5xx marks the span failed."""
    if span is None:
        return
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


def traced_transport(transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
    """``transport`` with a client span per request and the context in its headers
    (ours rather than httpx's ``AsyncOpenTelemetryTransport``: see ``client_span``)."""
    tracer = current_tracer()
    if tracer is None:
        return transport
    return _TracedTransport(transport, tracer)


class _TracedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, tracer: trace.Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        with client_span(self._tracer, request.method, url, request.headers) as span:
            response = await self._inner.handle_async_request(request)
            record_status(span, response.status_code)
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()
