"""Answering a redirect the link service resolved: replayed, learned, relayed.

Both ways a redirect reaches the link service end here: a batched lookup
(gateway/lookups.py), whose answer is in hand, and a request of its own (a
sampled one, or with batching off), whose answer is streamed by the proxy.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import trace

from gateway.fallback import Fallback, Outage
from gateway.headers import REPLAY_ON, RESPONSE_DROP
from gateway.lookups import LookupFailed, RedirectLookups
from services.chassis.context import request_id_var
from services.chassis.events import bounded_header
from services.chassis.lookups import Visit

__all__ = ["sampled", "serve_visit", "settle_redirect"]


def sampled() -> bool:
    """Whether this request is traced: a sampled redirect keeps a request of
    its own to the link service, so its trace shows the hop as it is."""
    return trace.get_current_span().get_span_context().trace_flags.sampled


async def settle_redirect(
    fallback: Fallback,
    outage: Outage,
    status: int,
    headers: Iterable[tuple[bytes, bytes]],
    generation: int,
) -> int | None:
    """The status of a stale redirect sent instead of a 502/503/504; otherwise
    None, once the gateway's memory has learned the answer, to be relayed."""
    assert outage.code is not None
    if status in REPLAY_ON:
        stale = await fallback.replay(outage)
        if stale is not None:
            return stale
    fallback.learn(outage.code, status, headers, generation)
    return None


async def serve_visit(
    lookups: RedirectLookups, fallback: Fallback, outage: Outage, generation: int
) -> int:
    """A redirect through a batched lookup: the link service's answer, its bytes as they are."""
    assert outage.code is not None
    referer = user_agent = None
    for name, value in outage.scope["headers"]:
        if name == b"referer":
            referer = bounded_header(value.decode("latin-1"))
        elif name == b"user-agent":
            user_agent = bounded_header(value.decode("latin-1"))
    visit = Visit(
        outage.code,
        outage.click_id,
        request_id_var.get(),
        outage.identity.client_ip,
        referer,
        user_agent,
    )
    try:
        answer = await lookups.lookup(visit)
    except LookupFailed as exc:
        if exc.reason == "timeout":
            return await fallback.timed_out(outage)
        return await fallback.unavailable(outage, exc.reason, exc.retry_after)
    stale = await settle_redirect(fallback, outage, answer.status, answer.headers, generation)
    if stale is not None:
        return stale
    headers = [(k, v) for k, v in answer.headers if k not in RESPONSE_DROP]
    await outage.send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": headers + outage.extra_headers,
        }
    )
    await outage.send({"type": "http.response.body", "body": answer.body})
    return answer.status
