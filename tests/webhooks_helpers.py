"""Helpers of the webhooks tests: endpoints made through the gateway, events on the topics."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import orjson

from services.chassis.events import CLICKS_TOPIC, LINKS_TOPIC
from tests.accounts import Account
from tests.conftest import Infra
from tests.test_analytics_consumer import click, link_changed, new_code, produce
from tests.webhook_receiver import Received

__all__ = ["clicked_ids", "create_endpoint", "link_of", "send_clicks", "wait_for"]

T = TypeVar("T")


def create_endpoint(
    client: httpx.Client, account: Account, url: str, **fields: Any
) -> dict[str, Any]:
    body = {"url": url, "event_types": ["link.clicked", "link.created"], **fields}
    response = client.post("/api/v1/webhooks", json=body, headers=account.bearer)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def link_of(infra: Infra, owner_id: str, code: str | None = None) -> str:
    """A code (new unless given) whose ``link.created`` by ``owner_id`` is on the links topic."""
    code = code or new_code()
    event = link_changed(code, "link.created", owner_id, datetime.now(UTC))
    asyncio.run(produce(infra, LINKS_TOPIC, code, [event]))
    return code


def send_clicks(infra: Infra, code: str, count: int) -> list[str]:
    """``count`` clicks of ``code`` on the clicks topic; their event ids."""
    clicks = [click(code, event_id=uuid.uuid4().hex) for _ in range(count)]
    asyncio.run(produce(infra, CLICKS_TOPIC, code, clicks))
    return [c["event_id"] for c in clicks]


def wait_for(read: Callable[[], T], done: Callable[[T], bool], within: float = 30) -> T:
    """``read()`` until ``done`` or the deadline; the last value read."""
    deadline = time.monotonic() + within
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def clicked_ids(requests: list[Received]) -> list[str]:
    """The click event ids in the link.clicked deliveries received, in order."""

    ids: list[str] = []
    for request in requests:
        payload = orjson.loads(request.body)
        if payload["type"] == "link.clicked":
            ids += [c["event_id"] for c in payload["data"]["clicks"]]
    return ids
