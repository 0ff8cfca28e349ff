"""Reading a link's stats through the gateway, which counts asynchronously."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["poll", "total"]


def poll(
    client: httpx.Client,
    path: str,
    done: Callable[[dict[str, Any]], bool],
    headers: dict[str, str] | None = None,
    within: float = 30,
) -> dict[str, Any]:
    """GET ``path`` until a 200 body satisfies ``done`` or the deadline passes."""
    deadline = time.monotonic() + within
    while True:
        response = client.get(path, headers=headers)
        body: dict[str, Any] = response.json()
        if (response.status_code == 200 and done(body)) or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            return body
        time.sleep(0.2)


def total(stats: dict[str, Any]) -> int:
    return int(stats["totals"]["clicks"]) + int(stats["totals"]["bot_clicks"])
