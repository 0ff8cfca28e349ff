"""The receiver in docs/examples, written only from the library's documentation,
verifies real deliveries of the session's webhooks service and deduplicates them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.devstack.processes import free_port, start_python
from tests.accounts import register
from tests.conftest import Infra
from tests.webhooks_helpers import create_endpoint, link_of, send_clicks, wait_for

pytestmark = pytest.mark.usefixtures("webhooks_url")

RECEIVER = Path(__file__).resolve().parents[1] / "docs" / "examples" / "webhook_receiver.py"


@pytest.fixture
def record(tmp_path: Path) -> Path:
    return tmp_path / "received.jsonl"


@pytest.fixture
def endpoint(
    infra: Infra, client: httpx.Client, record: Path, tmp_path: Path
) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """An endpoint of a new user, and the example receiver serving it with its secret."""
    owner = register(client)
    port = free_port()
    types = ["link.clicked", "link.created", "link.updated", "link.deleted"]
    created = create_endpoint(client, owner, f"http://127.0.0.1:{port}/hooks", event_types=types)
    process = start_python(
        f"receiver-{port}",
        [str(RECEIVER), "127.0.0.1", str(port), str(record)],
        {"WEBHOOK_SECRET": created["secret"]},
        tmp_path / "receiver.log",
        ready_url=f"http://127.0.0.1:{port}/",
    )
    try:
        yield created, owner.bearer
    finally:
        process.stop()


def lines(record: Path) -> list[dict[str, Any]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_the_documented_receiver_verifies_and_deduplicates_real_deliveries(
    infra: Infra,
    client: httpx.Client,
    endpoint: tuple[dict[str, Any], dict[str, str]],
    record: Path,
) -> None:
    created, auth = endpoint
    path = f"/api/v1/webhooks/{created['id']}"
    code = link_of(infra, created_owner(client, auth))
    sent = send_clicks(infra, code, 5)
    test = client.post(f"{path}/test", headers=auth).json()["id"]
    got = wait_for(lambda: lines(record), lambda r: _clicks(r) >= 5 and len(r) >= 3)
    client.post(f"{path}/deliveries/{test}/redeliver", headers=auth)
    got = wait_for(lambda: lines(record), lambda r: any(x["duplicate"] for x in r))

    first = [x for x in got if not x["duplicate"]]
    assert len({x["webhook_id"] for x in first}) == len(first)
    assert {x["payload"]["type"] for x in first} == {"link.created", "link.clicked", "webhook.test"}
    assert sorted(c["event_id"] for x in first for c in _click_list(x)) == sorted(sent)
    assert [x["webhook_id"] for x in got if x["duplicate"]] == [test]
    log = client.get(f"{path}/deliveries", headers=auth).json()["items"]
    assert all(a["status"] == 204 for d in log for a in d["attempts"])  # none refused: all verified


def created_owner(client: httpx.Client, auth: dict[str, str]) -> str:
    user_id: str = client.get("/api/v1/users/me", headers=auth).json()["id"]
    return user_id


def _click_list(line: dict[str, Any]) -> list[dict[str, Any]]:
    payload = line["payload"]
    clicks: list[dict[str, Any]] = (
        payload["data"]["clicks"] if payload["type"] == "link.clicked" else []
    )
    return clicks


def _clicks(got: list[dict[str, Any]]) -> int:
    return sum(len(_click_list(x)) for x in got if not x["duplicate"])
