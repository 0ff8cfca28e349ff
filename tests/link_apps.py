"""In-process link apps for tests that compare two ways of answering a redirect.

Loaded as a pytest plugin (tests/conftest.py): the ``apps`` and ``cache``
fixtures are shared by tests/test_redirect_shortcut.py and
tests/test_redirect_batch.py. Two link apps run in the test process, on the
session's Postgres, Redis and broker: one as shipped, and one with the
shortcut taken out, so that every request reaches the documented FastAPI
route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import orjson
import pytest
import redis.asyncio
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from infra.devstack.stack import INTERNAL_AUTH_KEY
from services.chassis.events import CLICK_ID_HEADER, CLICKS_TOPIC
from services.chassis.identity import GatewaySigner, Identity
from services.chassis.kafka import EventPublisher
from services.link.clicks import ClickRecorder
from services.link.config import LinkSettings
from services.link.main import create_app
from services.link.shortcut import HotPathShortcut
from tests.conftest import Infra, settings_for

__all__ = ["VISITOR", "App", "clicks_of", "create", "signed"]

SIGNER = GatewaySigner(INTERNAL_AUTH_KEY.encode())
VISITOR = Identity(None, "anonymous", "203.0.113.7")


def signed(method: str, path: str) -> dict[str, str]:
    """The headers the gateway adds to this request by a visitor."""
    pairs = SIGNER.headers(method, path.encode(), VISITOR)
    return {name.decode(): value.decode() for name, value in pairs}


class CapturedClicks(EventPublisher):
    """The click topic as a list: the events an app published, decoded."""

    def __init__(self, settings: LinkSettings) -> None:
        super().__init__(settings, CLICKS_TOPIC)
        self.events: list[dict[str, Any]] = []

    def publish(self, key: bytes, value: bytes) -> bool:
        self.events.append(orjson.loads(value))
        return True


class App:
    """One link app in this process: a client for it, and what it did."""

    def __init__(self, app: FastAPI, settings: LinkSettings) -> None:
        self.app = app
        self.clicks = CapturedClicks(settings)
        self.scope: Scope = {}  # of the last request, once the app is done with it
        transport = httpx.ASGITransport(app=self._keeping_scope)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://link")

    async def _keeping_scope(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
        self.scope = scope

    async def get(self, path: str, *, gateway: bool = True) -> httpx.Response:
        headers = {
            "x-request-id": "shortcut-test-request",
            CLICK_ID_HEADER: "0123456789abcdef0123456789abcdef",
            "referer": "https://example.org/page",
            "user-agent": "shortcut-test",
        }
        if gateway:
            headers.update(signed("GET", path))
        return await self.http.get(path, headers=headers)

    async def post(self, path: str, content: bytes, content_type: str | None) -> httpx.Response:
        """``content`` as it is, signed for a visitor, with this content type or none."""
        headers = {"x-request-id": "shortcut-test-request", **signed("POST", path)}
        if content_type is not None:
            headers["content-type"] = content_type
        return await self.http.post(path, content=content, headers=headers)


@pytest.fixture(scope="module")
async def apps(infra: Infra, link_url: str) -> AsyncIterator[tuple[App, App]]:
    """(as shipped, FastAPI only), started; ``link_url``: the schema is migrated."""
    with pytest.MonkeyPatch.context() as env:
        # The session's service's settings; its port goes unused in process.
        for name, value in settings_for(infra, "link", infra.ports.link).items():
            env.setenv(name, value)
        settings = LinkSettings()
    shipped, reference = create_app(settings), create_app(settings)
    # The middleware stack is built at the first call: taken out before that.
    kept = [m for m in reference.user_middleware if cast(object, m.cls) is not HotPathShortcut]
    assert len(kept) == len(reference.user_middleware) - 1
    reference.user_middleware = kept
    pair = App(shipped, settings), App(reference, settings)
    async with (
        shipped.router.lifespan_context(shipped),
        reference.router.lifespan_context(reference),
    ):
        for one in pair:
            recorder: ClickRecorder = one.app.state.clicks
            recorder.publisher = one.clicks
        yield pair
        for one in pair:
            await one.http.aclose()


async def create(app: App, **fields: object) -> str:
    headers = signed("POST", "/api/v1/links")
    response = await app.http.post("/api/v1/links", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


@pytest.fixture(scope="module")
async def cache(infra: Infra) -> AsyncIterator[redis.asyncio.Redis]:
    async with redis.asyncio.Redis.from_url(infra.redis_url) as connection:
        yield connection


def clicks_of(app: App) -> list[dict[str, Any]]:
    """The events published so far, without their time, and forgotten."""
    events = [{k: v for k, v in e.items() if k != "occurred_at"} for e in app.clicks.events]
    app.clicks.events.clear()
    return events
