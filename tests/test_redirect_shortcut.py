"""The redirect shortcut answers exactly as FastAPI's route does.

``HotPathShortcut`` (services/link/shortcut.py) serves ``GET /{code}``
without FastAPI's routing and dependency solving. Two link apps run here, in
this process, on the session's Postgres, Redis and broker: one as shipped,
and one with the shortcut taken out, so that every request reaches the
documented FastAPI route (tests/link_apps.py). The same request must get the same status,
headers, body and click event from both, for every kind of answer.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio

from services.chassis.red import route_label
from services.link.cache import LinkCache
from tests.link_apps import App, clicks_of, create, signed


def _answer(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    return response.status_code, sorted(response.headers.multi_items()), response.content


async def assert_same_answer(
    pair: tuple[App, App],
    path: str,
    *,
    gateway: bool = True,
    uncached: redis.asyncio.Redis | None = None,
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    """Both apps answer ``path`` alike, one after the other, and publish the
    same clicks: the shipped one's answer and clicks.

    With ``uncached``, the code's entry is deleted from that cache before
    each request: both answer from Postgres.
    """
    shipped, reference = pair
    answers = []
    for app in pair:
        if uncached is not None:
            await uncached.delete(LinkCache.key(path.removeprefix("/")))
        answers.append(await app.get(path, gateway=gateway))
    assert _answer(answers[0]) == _answer(answers[1])
    clicks = clicks_of(shipped)
    assert clicks == clicks_of(reference)
    return answers[0], clicks


def assert_took_the_shortcut(pair: tuple[App, App]) -> None:
    shipped, reference = pair
    assert shipped.scope["route_template"] == "/{code}"
    assert "route" not in shipped.scope  # FastAPI's routing never saw it
    assert "route_template" not in reference.scope
    # The same label (and span name) from either: the RED metrics' route.
    assert route_label(shipped.scope) == route_label(reference.scope) == "/{code}"


async def test_a_cached_link_is_answered_alike(apps: tuple[App, App]) -> None:
    code = await create(apps[0], url="https://example.com/hit")
    await apps[0].get(f"/{code}")  # now in the cache
    clicks_of(apps[0])
    response, clicks = await assert_same_answer(apps, f"/{code}")
    assert response.status_code == 302
    assert response.headers["location"] == "https://example.com/hit"
    assert len(clicks) == 1
    assert clicks[0]["code"] == code
    assert clicks[0]["event_id"] == "0123456789abcdef0123456789abcdef"  # the gateway's click id
    assert clicks[0]["referrer"] == "https://example.org/page"
    assert clicks[0]["request_id"] == "shortcut-test-request"
    assert_took_the_shortcut(apps)


@pytest.mark.parametrize("redirect_type", [301, 302, 307, 308])
async def test_each_redirect_type_missing_the_cache_is_answered_alike(
    apps: tuple[App, App], cache: redis.asyncio.Redis, redirect_type: int
) -> None:
    code = await create(apps[0], url="https://example.com/miss", redirect_type=redirect_type)
    response, clicks = await assert_same_answer(apps, f"/{code}", uncached=cache)
    assert response.status_code == redirect_type
    assert len(clicks) == 1
    assert_took_the_shortcut(apps)


async def test_unknown_and_malformed_codes_are_the_same_problem(apps: tuple[App, App]) -> None:
    for path in ("/no-such-code-here", "/not.a.code!"):
        response, clicks = await assert_same_answer(apps, path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert clicks == []
        assert_took_the_shortcut(apps)


async def test_an_expired_link_is_the_same_410(apps: tuple[App, App]) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=1)
    code = await create(apps[0], url="https://example.com/soon", expires_at=expires.isoformat())
    await asyncio.sleep((expires - datetime.now(UTC)).total_seconds() + 0.2)
    response, clicks = await assert_same_answer(apps, f"/{code}")
    assert response.status_code == 410
    assert response.json()["code"] == "link_expired"
    assert clicks == []


async def test_a_limited_link_is_counted_alike_until_it_is_the_same_410(
    apps: tuple[App, App],
) -> None:
    code = await create(apps[0], url="https://example.com/limited", max_visits=2)
    response, clicks = await assert_same_answer(apps, f"/{code}")  # one visit through each
    assert response.status_code == 302
    assert "x-redirect-stale-ttl" not in response.headers
    assert len(clicks) == 1
    response, clicks = await assert_same_answer(apps, f"/{code}")
    assert response.status_code == 410
    assert response.json()["code"] == "visit_limit_reached"
    assert clicks == []


async def test_an_unsigned_request_is_refused_before_the_shortcut(apps: tuple[App, App]) -> None:
    code = await create(apps[0], url="https://example.com/signed")
    response, clicks = await assert_same_answer(apps, f"/{code}", gateway=False)
    assert response.status_code == 401
    assert clicks == []


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/", "/a/b", "/x/"])
async def test_other_paths_are_left_to_fastapi(apps: tuple[App, App], path: str) -> None:
    await assert_same_answer(apps, path)
    assert "route_template" not in apps[0].scope


async def test_other_methods_are_left_to_fastapi(apps: tuple[App, App]) -> None:
    code = await create(apps[0], url="https://example.com/head")
    for app in apps:
        response = await app.http.head(f"/{code}", headers=signed("HEAD", f"/{code}"))
        assert response.status_code == 405
    assert clicks_of(apps[0]) == clicks_of(apps[1]) == []


async def test_no_other_get_route_of_one_segment_is_shadowed(apps: tuple[App, App]) -> None:
    """The shortcut assumes that FastAPI routes every GET of one segment to
    ``follow``, but for the paths it skips: a new route of that shape must
    be among them, or the shortcut would answer in its place."""
    shipped = apps[0]
    one_segment = {p for p in _get_paths(shipped.app.routes) if p.count("/") == 1}
    assert {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/{code}"} <= one_segment
    for path in one_segment - {"/{code}"}:
        await shipped.get(path)
        assert "route_template" not in shipped.scope, path


def _get_paths(routes: list[Any]) -> set[str]:
    """The paths of every GET route, through the routers FastAPI includes."""
    paths = set()
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            paths |= _get_paths(included.routes)
        elif "GET" in (getattr(route, "methods", None) or ()):
            paths.add(route.path)
    return paths
