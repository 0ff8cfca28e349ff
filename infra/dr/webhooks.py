"""The webhooks the drill's user is owed: one endpoint for ``link.clicked``, read in its database.

The webhooks service owes every click of its owner's links to the
endpoint, once (``delivery_events``: endpoint and source event id). Its
consumer groups commit offsets after writing, as analytics's do, so a
restored webhooks database is behind them and the rewind has to cover its
groups too: without it the clicks made between the backup and the
disaster are never owed. The drill reads what is owed straight from the
database: the endpoint's address (reserved ``.example``) is never
reached, and nothing here depends on a delivery succeeding.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from infra.dr.traffic import Client

__all__ = ["owed_clicks", "subscribe", "wait_owed"]

ENDPOINT_URL = "https://hooks.dr-drill.example/clicks"


def subscribe(client: Client) -> str:
    """A ``link.clicked`` endpoint for the client's user; its id."""
    with client.http() as http:
        body = {"url": ENDPOINT_URL, "event_types": ["link.clicked"]}
        response = http.post("/api/v1/webhooks", json=body, headers=client.auth())
        response.raise_for_status()
    return str(response.json()["id"])


def owed_clicks(database_url: str, endpoint_id: str) -> int:
    """Click events owed to the endpoint, each once (-1 while the database is away)."""

    async def count() -> int:
        connection = await asyncpg.connect(database_url, timeout=5)
        try:
            query = "SELECT count(*) FROM delivery_events WHERE endpoint_id = $1::uuid"
            return int(await connection.fetchval(query, endpoint_id))
        finally:
            await connection.close()

    try:
        return asyncio.run(count())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return -1


def wait_owed(database_url: str, endpoint_id: str, expected: int, timeout: float) -> int:
    """Poll until ``expected`` clicks are owed (or more: a fault); what is owed at the end."""
    deadline = time.monotonic() + timeout
    while True:
        owed = owed_clicks(database_url, endpoint_id)
        if owed >= expected or time.monotonic() > deadline:
            return owed
        time.sleep(0.2)
