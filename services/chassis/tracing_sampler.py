"""The sampler wrapper every process uses (services/chassis/tracing.py)."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

__all__ = ["NoOrphanClients"]


class NoOrphanClients(Sampler):
    """Drops a client span that would start a trace; otherwise asks ``inner``.

    A database query, Redis command or HTTP call outside any request is a
    background chore (the outbox relay polls Postgres five times a second,
    readiness probes call the upstreams): sampled as a root, each would be a
    one-span trace burying the requests in Jaeger. Inside a trace they are
    kept or dropped with it.
    """

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(  # noqa: PLR0917 - the SDK's signature
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT and not (
            trace.get_current_span(parent_context).get_span_context().is_valid
        ):
            return SamplingResult(Decision.DROP)
        return self.inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoOrphanClients{{{self.inner.get_description()}}}"
