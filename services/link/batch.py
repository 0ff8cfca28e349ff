"""``POST /internal/redirects``: the gateway's visits, each answered as ``GET /{code}`` would be.

The contract is services/chassis/lookups.py; why batches exist,
docs/adr/0012-batched-redirect-lookups.md. One ``MGET`` looks up every code;
a cached link is answered on the spot, anything else (a miss that loads from
Postgres, a link whose visits are counted) runs as its own task, so one slow
load does not hold up the rest for longer than it takes; the misses of a
batch are loaded from Postgres in one query first. Each visit runs
with its own request id, gets the same click event, status, headers and
body as its single request would (tests/test_redirect_batch.py holds the two
paths to that), and an error in one visit is that visit's answer, never the
batch's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import Request
from prometheus_client import Histogram
from starlette.responses import Response
from starlette.types import Send

from services.chassis.context import request_id_var
from services.chassis.errors import problem_response, send_problem
from services.chassis.http import read_body
from services.chassis.lookups import MAX_VISITS, Answer, Visit, decode_visits, encode_answers
from services.link.cache import NEGATIVE, CachedLink, Lookup, Ticket
from services.link.codes import CODE_RE
from services.link.resolver import UNLOOKED, Unlooked
from services.link.router import redirect_response

__all__ = ["handled", "handler_for", "serve_batch"]

log = logging.getLogger(__name__)
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]
BATCH_SIZE = Histogram(
    "link_redirect_batch_visits",
    "Visits per batch the gateway sent (POST /internal/redirects).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, MAX_VISITS),
)
_BODY_LIMIT = MAX_VISITS * 4096  # a visit's fields are bounded by the gateway


async def serve_batch(request: Request, send: Send) -> None:
    """Answer every visit of the batch in ``request``, in order."""
    body = await read_body(request.receive, _BODY_LIMIT)
    try:
        visits = decode_visits(body or b"")
    except ValueError as exc:
        await send_problem(send, 400, "malformed_batch", "Malformed batch", str(exc))
        return
    BATCH_SIZE.observe(len(visits))
    cache = request.app.state.resolver.cache
    shaped = [i for i, v in enumerate(visits) if CODE_RE.fullmatch(v.code)]
    found = await cache.get_many([visits[i].code for i in shaped]) if shaped else []
    lookups: list[Lookup | Unlooked] = [UNLOOKED] * len(visits)
    for i, lookup in zip(shaped, found, strict=True):
        lookups[i] = lookup
    await _load_misses(request, visits, lookups)
    answers: list[Answer | asyncio.Task[Answer]] = []
    for visit, lookup in zip(visits, lookups, strict=True):
        if isinstance(lookup, CachedLink) and not lookup.limited:
            answers.append(await _answer(request, visit, lookup))  # never suspends
        else:
            answers.append(asyncio.create_task(_answer(request, visit, lookup)))
    done = [a if isinstance(a, Answer) else await a for a in answers]
    payload = encode_answers(done)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _load_misses(
    request: Request, visits: list[Visit], lookups: list[Lookup | Unlooked]
) -> None:
    """Replace each miss by what Postgres holds, loaded for the batch in one query.

    A load that fails leaves the misses as they were: each visit then loads
    (and fails, or not) on its own, as it would have alone.
    """
    missed = {
        visits[i].code: lookup
        for i, lookup in enumerate(lookups)
        if isinstance(lookup, Ticket) or lookup is None
    }
    if len(missed) < 2:
        return  # one miss loads as it would alone
    try:
        loaded = await request.app.state.resolver.load_many(missed)
    except Exception as exc:
        log.warning("batch load failed", extra={"error": repr(exc)})
        return
    for i, visit in enumerate(visits):
        if visit.code in loaded:
            lookups[i] = loaded[visit.code] or NEGATIVE


async def _answer(request: Request, visit: Visit, lookup: Lookup | Unlooked) -> Answer:
    """One visit, as ``follow`` answers it, with the visit's own request id."""
    state = request.app.state
    token = request_id_var.set(visit.request_id)
    try:
        try:
            link = await state.resolver.resolve(visit.code, lookup)
            state.clicks.record_visit(
                visit.code,
                click_id=visit.click_id,
                referer=visit.referer,
                user_agent=visit.user_agent,
                ip=visit.ip,
            )
            response = redirect_response(link, state.settings)
        except Exception as exc:
            response = await _error_response(request, exc)
        return Answer(response.status_code, response.raw_headers, bytes(response.body))
    finally:
        request_id_var.reset(token)


async def _error_response(request: Request, exc: Exception) -> Response:
    handler = handler_for(request.app.exception_handlers, exc)
    if handler is not None:
        return await handler(request, exc)
    # What the server error middleware answers a single request with.
    log.exception("redirect failed", extra={"code_error": repr(exc)})
    return problem_response(
        500, "internal_error", "Internal error", "Something went wrong on our side."
    )


async def handled(request: Request, answer: Awaitable[Response]) -> Response:
    """``answer``; if it raises, what the app's exception handler for the error
    answers, as FastAPI's exception middleware would (none: it propagates)."""
    try:
        return await answer
    except Exception as exc:
        handler = handler_for(request.app.exception_handlers, exc)
        if handler is None:
            raise
        return await handler(request, exc)


def handler_for(handlers: Mapping[Any, ErrorHandler], exc: Exception) -> ErrorHandler | None:
    """The handler FastAPI's exception middleware would pick: the nearest class
    registered, except ``Exception`` itself, which is the server error
    middleware's (outside this one)."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
