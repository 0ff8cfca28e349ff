"""A batch that does not come back holds the visits queued behind it only briefly.

gateway/lookups.py keeps at most a few batches out at once; a visit that
arrives meanwhile waits for one to return. Here the first batch goes to a
link service that hangs (a stand-in that answers on cue): the next visit
must leave on its own after ``MAX_QUEUE_WAIT``, not wait for the hung
batch's timeout, and get its answer.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from gateway.config import GatewaySettings
from gateway.lookups import MAX_QUEUE_WAIT, RedirectLookups, create_lookup_session
from gateway.resilience import build_guard
from infra.devstack.managed import free_port
from services.chassis.identity import GatewaySigner
from services.chassis.lookups import BATCH_PATH, Answer, Visit, decode_visits, encode_answers

KEY = "a test key of enough bytes"


def _visit(code: str) -> Visit:
    return Visit(code, None, None, "203.0.113.9", None, None)


Handler = Callable[[web.Request], Awaitable[web.Response]]


@asynccontextmanager
async def _lookups_to(link_service: Handler, max_in_flight: int) -> AsyncIterator[RedirectLookups]:
    """Lookups sent to ``link_service``, a stand-in serving the batch path."""
    app = web.Application()
    app.router.add_post(BATCH_PATH, link_service)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = GatewaySettings(internal_auth_key=KEY, link_timeout_seconds=5)
    session = create_lookup_session(settings)
    try:
        yield RedirectLookups(
            session,
            f"http://127.0.0.1:{port}",
            GatewaySigner(KEY.encode()),
            build_guard("link", settings),
            max_visits=64,
            max_in_flight=max_in_flight,
        )
    finally:
        await session.close()
        await runner.cleanup()


def _answered(visits: list[Visit]) -> web.Response:
    answers = [
        Answer(302, [(b"location", b"https://example.com/" + v.code.encode())], b"") for v in visits
    ]
    return web.Response(body=encode_answers(answers), content_type="application/json")


async def test_a_visit_does_not_wait_behind_a_hung_batch() -> None:
    release = asyncio.Event()
    arrived: dict[str, float] = {}

    async def link_service(request: web.Request) -> web.Response:
        visits = decode_visits(await request.read())
        for visit in visits:
            arrived[visit.code] = time.monotonic()
        if visits[0].code == "hangs":
            await release.wait()
        return _answered(visits)

    async with _lookups_to(link_service, max_in_flight=1) as lookups:
        try:
            hung = asyncio.create_task(lookups.lookup(_visit("hangs")))
            await asyncio.sleep(0.1)  # the only batch allowed is out, and stuck
            started = time.monotonic()
            answer = await asyncio.wait_for(lookups.lookup(_visit("behind")), timeout=2)
            waited = time.monotonic() - started
            assert answer.status == 302
            assert (b"location", b"https://example.com/behind") in answer.headers
            assert MAX_QUEUE_WAIT * 0.8 <= waited < MAX_QUEUE_WAIT + 0.5, waited
            assert not hung.done()
            release.set()
            assert (await hung).status == 302
        finally:
            release.set()
    assert set(arrived) == {"hangs", "behind"}


async def test_each_batch_carries_a_trace_context_of_its_own_not_sampled() -> None:
    """So the link service starts no trace for it (sampled visits are not
    batched: gateway/proxy.py); W3C Trace Context, ids never reused."""
    seen: list[str] = []

    async def link_service(request: web.Request) -> web.Response:
        seen.append(request.headers["traceparent"])
        return _answered(decode_visits(await request.read()))

    async with _lookups_to(link_service, max_in_flight=4) as lookups:
        for code in ("one", "two", "three"):
            assert (await lookups.lookup(_visit(code))).status == 302
    assert len(seen) == 3
    for header in seen:
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00", header), header
    trace_ids, span_ids = {h.split("-")[1] for h in seen}, {h.split("-")[2] for h in seen}
    assert len(trace_ids) == len(span_ids) == 3
    # All-zero ids are invalid (W3C Trace Context).
    assert "0" * 32 not in trace_ids
    assert "0" * 16 not in span_ids
