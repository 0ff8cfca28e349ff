"""A batched visit is answered exactly as its own ``GET /{code}`` would be.

The gateway sends the redirects it cannot answer from memory as batches
(``POST /internal/redirects``, services/link/batch.py). Here the shipped
link app answers each visit in a batch, and the reference app (FastAPI's
documented route, no shortcut) answers the same visit as a request of its
own: status, headers, body and click event must be the same, and a batch
keeps its visits' order whatever mix of answers it holds.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import redis.asyncio

from gateway.headers import RESPONSE_DROP
from services.chassis.lookups import BATCH_PATH, MAX_VISITS, Answer, Visit, decode_answers
from services.chassis.lookups import encode_visits as encode
from services.link.cache import LinkCache
from tests.link_apps import VISITOR, App, clicks_of, create, signed

# What App.get sends with every single request, as one visit.
CLICK_ID = "0123456789abcdef0123456789abcdef"


def visit(code: str) -> Visit:
    return Visit(
        code,
        CLICK_ID,
        "shortcut-test-request",
        VISITOR.client_ip,
        "https://example.org/page",
        "shortcut-test",
    )


async def batch(app: App, codes: list[str], *, sign: bool = True) -> httpx.Response:
    headers = signed("POST", BATCH_PATH) if sign else {}
    return await app.http.post(
        BATCH_PATH, content=encode([visit(c) for c in codes]), headers=headers
    )


def _relayed(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[Any, ...]:
    """What the gateway relays of an answer (it drops the same headers from both)."""
    kept = sorted((k.lower(), v) for k, v in headers if k.lower() not in RESPONSE_DROP)
    return status, kept, body


def _single(response: httpx.Response) -> tuple[Any, ...]:
    return _relayed(response.status_code, response.headers.raw, response.content)


def _batched(answer: Answer) -> tuple[Any, ...]:
    return _relayed(answer.status, answer.headers, answer.body)


async def assert_batched_alike(
    apps: tuple[App, App], codes: list[str], uncached: redis.asyncio.Redis | None = None
) -> tuple[list[Answer], list[dict[str, Any]]]:
    """The shipped app's batch answers each code as the reference app's route
    does, one request each, with the same clicks: the answers and clicks."""
    shipped, reference = apps
    for code in codes:
        if uncached is not None:
            await uncached.delete(LinkCache.key(code))
    response = await batch(shipped, codes)
    assert response.status_code == 200, response.text
    answers = decode_answers(response.content, len(codes))
    batched_clicks = clicks_of(shipped)
    singles = []
    for code in codes:
        if uncached is not None:
            await uncached.delete(LinkCache.key(code))
        singles.append(await reference.get(f"/{code}"))
    assert [_batched(a) for a in answers] == [_single(r) for r in singles]
    # Published as each visit is answered: a cached one at once, a load when it is done.
    assert _by_code(batched_clicks) == _by_code(clicks_of(reference))
    return answers, batched_clicks


def _by_code(clicks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(clicks, key=lambda click: str(click["code"]))


async def test_a_cached_link_is_answered_as_its_own_request(apps: tuple[App, App]) -> None:
    code = await create(apps[0], url="https://example.com/batched-hit")
    await apps[0].get(f"/{code}")  # now in the cache
    clicks_of(apps[0])
    answers, clicks = await assert_batched_alike(apps, [code])
    assert answers[0].status == 302
    assert (b"location", b"https://example.com/batched-hit") in answers[0].headers
    assert [c["event_id"] for c in clicks] == [CLICK_ID]
    assert clicks[0]["request_id"] == "shortcut-test-request"
    assert clicks[0]["referrer"] == "https://example.org/page"
    assert clicks[0]["ip_hash"] is not None


async def test_a_mixed_batch_keeps_its_order(
    apps: tuple[App, App], cache: redis.asyncio.Redis
) -> None:
    codes = [
        await create(apps[0], url=f"https://example.com/mixed-{kind}", redirect_type=kind)
        for kind in (301, 302, 307, 308)
    ]
    mixed = [codes[0], "no-such-code-here", codes[1], "not.a.code!", codes[2], codes[3]]
    answers, clicks = await assert_batched_alike(apps, mixed, uncached=cache)
    assert [a.status for a in answers] == [301, 404, 302, 404, 307, 308]
    assert len(clicks) == 4


async def test_expired_and_limited_links_are_the_same_410s(apps: tuple[App, App]) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1)
    expired = await create(apps[0], url="https://example.com/soon", expires_at=expires.isoformat())
    limited = await create(apps[0], url="https://example.com/limited", max_visits=2)
    await asyncio.sleep((expires - datetime.now(UTC)).total_seconds() + 0.2)
    answers, clicks = await assert_batched_alike(apps, [expired, limited])
    assert [a.status for a in answers] == [410, 302]
    assert len(clicks) == 1
    answers, clicks = await assert_batched_alike(apps, [limited])  # the second and last visit
    assert answers[0].status == 410
    assert orjson.loads(answers[0].body)["code"] == "visit_limit_reached"
    assert clicks == []


async def test_one_visit_failing_is_its_own_answer(apps: tuple[App, App]) -> None:
    code = await create(apps[0], url="https://example.com/beside-a-failure")
    resolver = apps[0].app.state.resolver
    real = resolver.resolve

    async def failing(wanted: str, *args: Any) -> Any:
        if wanted == "explodes":
            raise RuntimeError("a defect")
        return await real(wanted, *args)

    resolver.resolve = failing
    try:
        response = await batch(apps[0], ["explodes", code])
    finally:
        resolver.resolve = real
    answers = decode_answers(response.content, 2)
    assert answers[0].status == 500
    assert orjson.loads(answers[0].body)["request_id"] == "shortcut-test-request"
    assert answers[1].status == 302
    clicks_of(apps[0])


async def test_only_the_gateway_may_send_a_batch(apps: tuple[App, App]) -> None:
    code = await create(apps[0], url="https://example.com/unsigned-batch")
    response = await batch(apps[0], [code], sign=False)
    assert response.status_code == 401
    assert clicks_of(apps[0]) == []


async def test_a_malformed_or_oversized_batch_is_a_400(apps: tuple[App, App]) -> None:
    shipped = apps[0]
    bodies = [
        b"not json",
        b'{"visits": []}',
        b'{"visits": [{"code": 5}]}',
        b'{"visits": [{"code": "a", "ip": ["x"]}]}',
        encode([visit("a")] * (MAX_VISITS + 1)),
    ]
    for body in bodies:
        headers = signed("POST", BATCH_PATH)
        response = await shipped.http.post(BATCH_PATH, content=body, headers=headers)
        assert response.status_code in (400, 413), (body[:40], response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert clicks_of(shipped) == []
