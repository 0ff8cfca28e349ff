"""A batch that does not come back holds the visits queued behind it only briefly.

gateway/lookups.py keeps at most a few batches out at once; a visit that
arrives meanwhile waits for one to return. Here the first batch goes to a
link service that hangs (a stand-in that answers on cue): the next visit
must leave on its own after ``MAX_QUEUE_WAIT``, not wait for the hung
batch's timeout, and get its answer.
"""

from __future__ import annotations

import asyncio
import time

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


async def test_a_visit_does_not_wait_behind_a_hung_batch() -> None:
    release = asyncio.Event()
    arrived: dict[str, float] = {}

    async def link_service(request: web.Request) -> web.Response:
        visits = decode_visits(await request.read())
        for visit in visits:
            arrived[visit.code] = time.monotonic()
        if visits[0].code == "hangs":
            await release.wait()
        answers = [
            Answer(302, [(b"location", b"https://example.com/" + v.code.encode())], b"")
            for v in visits
        ]
        return web.Response(body=encode_answers(answers), content_type="application/json")

    app = web.Application()
    app.router.add_post(BATCH_PATH, link_service)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = GatewaySettings(internal_auth_key=KEY, link_timeout_seconds=5)
    session = create_lookup_session(settings)
    lookups = RedirectLookups(
        session,
        f"http://127.0.0.1:{port}",
        GatewaySigner(KEY.encode()),
        build_guard("link", settings),
        max_visits=64,
        max_in_flight=1,
    )
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
        await session.close()
        await runner.cleanup()
    assert set(arrived) == {"hangs", "behind"}
