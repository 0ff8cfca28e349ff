"""Sampling: the edge's decision, and the sampler wrapper every process uses.

Both start from the sampler the SDK builds from ``OTEL_TRACES_SAMPLER``
(``_ARG``); services/chassis/tracing.py installs them.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

__all__ = ["EdgeSampler", "NoOrphanClients"]

# A new trace the edge drops, as the SDK would flag it: not sampled, random id.
_NOT_SAMPLED = TraceFlags(TraceFlags.RANDOM_TRACE_ID)
# TraceIdRatioBased decides on these bits of the trace id.
_LOW_64_BITS = TraceIdRatioBased.TRACE_ID_LIMIT


class EdgeSampler(RandomIdGenerator):
    """The edge's sampling decision, made before the SDK is asked for a span.

    Every request at the edge starts a new trace, and the SDK's own path for
    one that is then dropped (a sampler call, a span object, its context
    attached and detached) ran for the 99 % of requests nobody will see at
    1 % sampling. Here the decision is TraceIdRatioBased's rule on a trace id
    drawn first: a dropped request gets that id, unsampled, for a bare
    ``NonRecordingSpan``, which is all its upstream calls need to learn the
    decision (no SDK span, no export).

    A kept request gets the SDK's span, with the same trace id: this is also
    the provider's id generator, and hands the SDK the id the edge kept, so
    the SDK's sampler, asked again, decides the same on the same id, and a
    non-parent-based ``traceidratio`` behind the edge agrees with it too.
    """

    def __init__(self, sampler: Sampler) -> None:
        self.bound = _new_trace_bound(sampler)
        self._kept: int | None = None

    def decide(self) -> SpanContext | None:
        """A new trace: its context if dropped. None if kept: start its span
        at once, as a root, and the SDK takes the kept id (generate_trace_id)."""
        trace_id = super().generate_trace_id()
        if trace_id & _LOW_64_BITS < self.bound:
            self._kept = trace_id
            return None
        return SpanContext(
            trace_id, self.generate_span_id(), is_remote=False, trace_flags=_NOT_SAMPLED
        )

    def generate_trace_id(self) -> int:
        """The SDK's id for a new trace: the one the edge has just kept, else a random one."""
        kept, self._kept = self._kept, None
        return super().generate_trace_id() if kept is None else kept


def _new_trace_bound(sampler: Sampler) -> int:
    """A new trace is kept when the low 64 bits of its id are below this.

    ``sampler`` is one the SDK builds from ``OTEL_TRACES_SAMPLER``: a
    ``ParentBased`` around a root sampler, or the root sampler alone; the root
    is a ``TraceIdRatioBased`` or always on or off.
    """
    # ParentBased does not expose its root; the SDK sets it from the variable.
    root = sampler._root if isinstance(sampler, ParentBased) else sampler
    if isinstance(root, TraceIdRatioBased):
        return root.bound
    if isinstance(root, StaticSampler):
        always_on = root.should_sample(None, 1, "").decision is Decision.RECORD_AND_SAMPLE
        return _LOW_64_BITS + 1 if always_on else 0
    raise ValueError(f"the edge cannot decide for {sampler.get_description()}")


class NoOrphanClients(Sampler):
    """Drops a client span that would start a trace; otherwise asks ``inner``.

    A database query, Redis command or HTTP call outside any request is a
    background chore (the outbox relay polls Postgres every 2 s,
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
