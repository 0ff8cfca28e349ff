"""Errors at the edge of every process, on apps built with the real chassis, in process.

What a fuzzer through the gateway cannot produce on cue: a handler with a
bug. Whatever escapes must still reach the client as a problem document that
carries the request id, never the server's bare ``text/plain`` 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from services.chassis.app import build_app
from services.chassis.config import ServiceSettings
from services.chassis.errors import PROBLEM_JSON
from services.chassis.http import RequestMiddleware


@asynccontextmanager
async def _no_resources(_: FastAPI) -> AsyncIterator[None]:
    yield


def _service() -> FastAPI:
    app = build_app(ServiceSettings(access_log=False), title="test", lifespan=_no_resources)

    @app.get("/items")
    async def list_items() -> list[str]:
        raise RuntimeError("a bug in a handler")

    @app.post("/items")
    async def create_item() -> str:
        return "created"

    @app.delete("/items")
    async def delete_items() -> None:
        return None

    return app


async def _raw_app_with_a_bug(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("a bug in pure ASGI code, as in the gateway's edge router")


def _client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def _assert_internal_error(response: httpx.Response) -> None:
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["request_id"] == response.headers["x-request-id"]


async def test_a_handler_that_raises_answers_a_problem_with_its_request_id() -> None:
    async with _client(_service()) as http:
        _assert_internal_error(await http.get("/items", headers={"x-request-id": "abc-123"}))


async def test_pure_asgi_code_that_raises_answers_a_problem_with_its_request_id() -> None:
    # The gateway: RequestMiddleware is outermost, with no FastAPI around it.
    async with _client(RequestMiddleware(_raw_app_with_a_bug, access_log_enabled=False)) as http:
        _assert_internal_error(await http.get("/anything"))


async def test_a_405_names_every_method_of_the_path_not_only_the_first_route() -> None:
    async with _client(_service()) as http:
        response = await http.put("/items")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["allow"] == "DELETE, GET, POST"
