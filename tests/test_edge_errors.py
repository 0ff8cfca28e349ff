"""Errors at the edge of every process, on apps built with the real chassis, in process.

What a fuzzer through the gateway cannot produce on cue: a handler with a
bug. Whatever escapes must still reach the client as a problem document that
carries the request id, never the server's bare ``text/plain`` 500.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import sqlalchemy.exc
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from infra.devstack.stack import REPO_ROOT
from services.chassis.app import build_app
from services.chassis.config import ServiceSettings
from services.chassis.db import LOST_CONNECTION
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


async def test_a_bug_under_the_gateways_middleware_is_answered_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The gateway's FastAPI routes (health, documents, the web page) run
    under RequestMiddleware, outside Starlette's catch-all, which answers a
    bug and then raises it again for the server: it must stop there, or
    uvicorn logs a second traceback for every 500."""
    app = build_app(
        ServiceSettings(access_log=False), title="t", lifespan=_no_resources, edge_middleware=False
    )

    @app.get("/page")
    async def page() -> None:
        raise RuntimeError("a bug in a gateway route")

    wrapped = RequestMiddleware(app, access_log_enabled=False)
    transport = httpx.ASGITransport(app=wrapped, raise_app_exceptions=True)
    with caplog.at_level(logging.ERROR):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            _assert_internal_error(await http.get("/page"))
    assert [r.getMessage() for r in caplog.records if r.exc_info] == ["unhandled error"]


async def test_a_405_names_every_method_of_the_path_not_only_the_first_route() -> None:
    async with _client(_service()) as http:
        response = await http.put("/items")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["allow"] == "DELETE, GET, POST"


async def test_a_lost_database_is_a_503_where_the_service_names_its_driver_errors() -> None:
    """A service with a database passes its driver's connection errors; they
    answer 503 like a refused socket, not 500 like a bug."""
    lost = sqlalchemy.exc.OperationalError("SELECT 1", None, ConnectionResetError())

    def service(unreachable: tuple[type[Exception], ...]) -> FastAPI:
        settings = ServiceSettings(access_log=False)
        app = build_app(settings, title="t", lifespan=_no_resources, unreachable=unreachable)

        @app.get("/rows")
        async def rows() -> None:
            raise lost

        return app

    async with _client(service(LOST_CONNECTION)) as http:
        response = await http.get("/rows")
    assert (response.status_code, response.json()["code"]) == (503, "dependency_unavailable")
    async with _client(service(())) as http:
        _assert_internal_error(await http.get("/rows"))


def test_the_gateway_loads_no_database_driver() -> None:
    """The gateway has no database: SQLAlchemy and asyncpg (~14 MB and ~0.2 s
    of start-up a replica here) stay out of its process."""
    probe = "import sys, gateway.main; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    ).stdout
    assert "'fastapi'" in loaded  # the probe saw the gateway's modules
    assert "'sqlalchemy'" not in loaded
    assert "'asyncpg'" not in loaded
