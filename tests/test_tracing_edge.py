"""The edge's sampling decision, in process (issue 6): a request the edge
drops costs no span of the SDK's, yet tells its upstreams it was dropped.

Through real processes (the edge's ratio followed behind it, a client's
``traceparent`` ignored): tests/test_tracing.py.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from typing import Any, NamedTuple

import httpx
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_ON,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, Span
from starlette.types import Message, Receive, Scope, Send

from services.chassis import tracing
from services.chassis.accesslog import AccessLog
from services.chassis.tracing import TracingMiddleware, trace_with
from services.chassis.tracing_http import traced_transport
from services.chassis.tracing_sampler import EdgeSampler, NoOrphanClients

RATIO = 0.25
REQUESTS = 400
LOW_64_BITS = TraceIdRatioBased.TRACE_ID_LIMIT
BOUND = TraceIdRatioBased(RATIO).bound


class CountingSampler(ParentBasedTraceIdRatio):
    """The SDK's sampler for ``parentbased_traceidratio``, counting what it
    is asked: the SDK asks its sampler about every span it is to start."""

    def __init__(self, rate: float) -> None:
        super().__init__(rate)
        self.asked = 0

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        self.asked += 1
        return super().should_sample(*args, **kwargs)


class Upstream(httpx.AsyncBaseTransport):
    """Answers every call with a redirect, and keeps the ``traceparent`` it was sent."""

    def __init__(self) -> None:
        self.traceparents: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.traceparents.append(request.headers.get("traceparent", ""))
        return httpx.Response(302)


class Seen(NamedTuple):
    """One request, as the app behind the edge saw it."""

    span: Span
    recorded: bool  # while it ran (an ended span is recording no more)
    instrumented: bool  # whether Redis and asyncpg would make spans
    traceparent: str  # sent to the upstream
    line: dict[str, Any]  # its access line


class Traced(NamedTuple):
    sampler: CountingSampler
    exported: InMemorySpanExporter


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[Traced]:
    """This process traced through a provider of its own, set up as ``start_tracing`` does."""
    monkeypatch.setattr(tracing, "_on", None)  # put back after the test
    sampler = CountingSampler(RATIO)
    provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    exported = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    trace_with(provider)
    yield Traced(sampler, exported)
    provider.shutdown()


async def through_the_edge(requests: int, client_headers: list[tuple[bytes, bytes]]) -> list[Seen]:
    """``requests`` redirects through the edge's middleware, each calling an upstream."""
    upstream = Upstream()
    client = traced_transport(upstream)
    stream = io.StringIO()
    access = AccessLog("gateway", lambda: stream)
    seen: list[Seen] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route_template"] = "/{code}"
        await client.handle_async_request(httpx.Request("GET", "http://link/abc1234"))
        access.write("GET", "/abc1234", 302, 0.1)
        access.flush()
        line = orjson.loads(stream.getvalue().splitlines()[-1])
        current = trace.get_current_span()
        seen.append(
            Seen(
                current,
                current.is_recording(),
                is_instrumentation_enabled(),
                upstream.traceparents[-1],
                line,
            )
        )
        await send({"type": "http.response.start", "status": 302, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        return None

    edge = TracingMiddleware(app, trust_incoming=False)
    for _ in range(requests):
        scope = {"type": "http", "method": "GET", "path": "/abc1234", "headers": client_headers}
        await edge(scope, receive, send)
    return seen


async def test_a_request_the_edge_drops_costs_no_span_of_the_sdk(traced: Traced) -> None:
    seen = await through_the_edge(REQUESTS, [(b"host", b"gateway")])
    spans = traced.exported.get_finished_spans()
    # Every span the SDK was asked for was recorded: none was made only to be dropped.
    assert traced.sampler.asked == len(spans)
    kept = [s for s in seen if s.recorded]
    dropped = [s for s in seen if not s.recorded]
    # Binomial(400, 0.25): 100 expected, 61 and 139 are 4.5 standard deviations away.
    assert 61 <= len(kept) <= 139
    # A server span and its upstream call's client span per kept request.
    assert Counter(s.name for s in spans) == {"GET /{code}": len(kept), "GET": len(kept)}
    for request in dropped:
        context = request.span.get_span_context()
        assert isinstance(request.span, NonRecordingSpan)
        assert context.is_valid
        assert not context.trace_flags.sampled
        # The ratio's rule, on the id the upstream is told.
        assert context.trace_id & LOW_64_BITS >= BOUND
        assert request.traceparent == f"00-{context.trace_id:032x}-{context.span_id:016x}-02"
        assert not request.instrumented
        assert "trace_id" not in request.line
        assert request.line["status"] == 302
    for request in kept:
        context = request.span.get_span_context()
        assert context.trace_id & LOW_64_BITS < BOUND  # the id it was kept for
        assert request.traceparent.startswith(f"00-{context.trace_id:032x}-")
        assert request.traceparent.endswith("-03")  # sampled, random trace id
        assert request.instrumented
        assert request.line["trace_id"] == f"{context.trace_id:032x}"
    assert len({s.span.get_span_context().trace_id for s in seen}) == REQUESTS


async def test_the_edge_starts_its_own_trace_whatever_the_client_sends(traced: Traced) -> None:
    forged = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    headers = [(b"traceparent", forged.encode()), (b"tracestate", b"forged=1")]
    seen = await through_the_edge(40, headers)
    assert all(s.span.get_span_context().trace_id != int("ab" * 16, 16) for s in seen)
    assert all(s.traceparent != forged for s in seen)


@pytest.mark.parametrize(
    ("sampler", "kept"),
    [
        (ParentBasedTraceIdRatio(RATIO), RATIO),
        (TraceIdRatioBased(RATIO), RATIO),
        (DEFAULT_ON, 1.0),  # parentbased_always_on, the SDK's default
        (ALWAYS_ON, 1.0),
        (ALWAYS_OFF, 0.0),
    ],
)
def test_the_edge_keeps_new_traces_as_the_configured_sampler_would(
    sampler: Sampler, kept: float
) -> None:
    assert EdgeSampler(sampler).bound == round(kept * (LOW_64_BITS + 1))


def test_the_edge_refuses_a_sampler_it_cannot_decide_for() -> None:
    with pytest.raises(ValueError, match="cannot decide"):
        EdgeSampler(NoOrphanClients(ALWAYS_ON))
