"""The webhook chaos tool's own parts: its receiver's ledger and its report section.

The whole experiment (``make chaos-webhooks``) starts a stack of its own and
takes minutes; its latest numbers are in docs/chaos-report.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from standardwebhooks import Webhook

from chaos.receiver import Receiver
from chaos.webhooks import BEGIN, END, write
from infra.devstack.processes import free_port
from services.webhooks.signing import new_secret


def post(receiver: Receiver, secret: str, message_id: str, payload: Mapping[str, object]) -> int:
    body = orjson.dumps(payload)
    at = datetime.now(UTC)
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
    }
    return httpx.post(receiver.url, content=body, headers=headers).status_code


def test_the_ledger_counts_duplicates_and_events_owed_twice() -> None:
    secret = new_secret()
    receiver = Receiver(free_port(), secret)
    receiver.up()
    try:
        click = {"event_id": uuid.uuid4().hex, "code": "abc"}
        clicked = {"type": "link.clicked", "timestamp": "t", "data": {"clicks": [click]}}
        assert post(receiver, secret, "msg_1", clicked) == 204
        assert post(receiver, secret, "msg_1", clicked) == 204  # the same message again
        assert post(receiver, secret, "msg_2", clicked) == 204  # the same event, owed twice
        assert post(receiver, new_secret(), "msg_3", clicked) == 400
    finally:
        receiver.down()
    ledger = receiver.ledger
    assert (ledger.requests, ledger.duplicates, ledger.refused) == (4, 1, 1)
    assert ledger.messages[click["event_id"]] == {"msg_1", "msg_2"}
    assert len(ledger.events("link.clicked", "abc")) == 1


def test_the_report_section_replaces_its_last_run_and_keeps_the_rest(tmp_path: Path) -> None:
    report = tmp_path / "chaos.md"
    report.write_text("# Chaos report\n\n| table |\n")
    write(report, f"{BEGIN}\nfirst\n{END}\n")
    write(report, f"{BEGIN}\nsecond\n{END}\n")
    text = report.read_text()
    assert "| table |" in text
    assert "second" in text
    assert "first" not in text
