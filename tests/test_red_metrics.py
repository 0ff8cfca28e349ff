"""The request metrics (``RequestMiddleware``) on a small real Starlette app, in process.

The running services are checked in tests/test_observability_live.py; here
are the cases traffic through the gateway does not produce on cue: an app
that raises, a method nobody uses, a scope that already carries a template.
"""

from __future__ import annotations

import uuid

import httpx
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from services.chassis.http import RequestMiddleware


async def _item(request: Request) -> Response:
    if request.path_params["item"] == "boom":
        raise RuntimeError("the handler failed")
    return PlainTextResponse("ok")


def _requests(method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


def _observed(method: str, route: str) -> float:
    labels = {"method": method, "route": route}
    return REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) or 0.0


def _client(app: Starlette | RequestMiddleware) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


# A path format no other test's app uses, so the counts below are this file's own.
ITEM = f"/red-{uuid.uuid4().hex[:6]}/{{item}}"
APP = RequestMiddleware(Starlette(routes=[Route(ITEM, _item, methods=["GET", "OPTIONS"])]))


async def test_requests_are_counted_by_route_template_and_status() -> None:
    before = _requests("GET", ITEM, "200"), _observed("GET", ITEM)
    async with _client(APP) as http:
        for item in ("a", "b", "c"):
            assert (await http.get(ITEM.format(item=item))).status_code == 200
    assert _requests("GET", ITEM, "200") == before[0] + 3
    assert _observed("GET", ITEM) == before[1] + 3


async def test_a_handler_that_raises_counts_as_a_500_and_leaves_nothing_in_flight() -> None:
    before = _requests("GET", ITEM, "500")
    async with _client(APP) as http:
        assert (await http.get(ITEM.format(item="boom"))).status_code == 500
    assert _requests("GET", ITEM, "500") == before + 1
    assert REGISTRY.get_sample_value("http_requests_in_flight") == 0


async def test_unknown_paths_and_methods_are_folded_into_bounded_labels() -> None:
    before = _requests("GET", "unmatched", "404"), _requests("other", ITEM, "405")
    async with _client(APP) as http:
        assert (await http.get(f"/{uuid.uuid4().hex}")).status_code == 404
        assert (await http.request("BREW", ITEM.format(item="a"))).status_code == 405
    assert _requests("GET", "unmatched", "404") == before[0] + 1
    assert _requests("other", ITEM, "405") == before[1] + 1


async def test_a_template_set_on_the_scope_wins_over_the_path() -> None:
    async def edge(scope: Scope, receive: Receive, send: Send) -> None:
        # What the gateway's edge router does for the paths it proxies.
        scope["route_template"] = "/{code}-red-test"
        await PlainTextResponse("proxied", status_code=302)(scope, receive, send)

    before = _requests("GET", "/{code}-red-test", "302")
    async with _client(RequestMiddleware(edge)) as http:
        assert (await http.get("/Xy3kP9a")).status_code == 302
    assert _requests("GET", "/{code}-red-test", "302") == before + 1


async def test_a_request_left_unanswered_is_a_499_not_a_server_error() -> None:
    async def gone(scope: Scope, receive: Receive, send: Send) -> None:
        # The client disconnected before the app answered: it returns, sending nothing.
        scope["route_template"] = "/{code}-red-gone"

    before = _requests("GET", "/{code}-red-gone", "499")
    scope = {"type": "http", "method": "GET", "path": "/Xy3kP9a", "headers": []}
    await RequestMiddleware(gone)(scope, _never, _discard)
    assert _requests("GET", "/{code}-red-gone", "499") == before + 1
    assert _requests("GET", "/{code}-red-gone", "500") == 0


async def _never() -> Message:
    raise AssertionError("the app did not read the body")


async def _discard(message: Message) -> None:
    raise AssertionError(f"nothing should be sent, got {message['type']}")
