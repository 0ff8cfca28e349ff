"""A webhook receiver that can be taken down and brought back on the same port.

It verifies every request with the ``standardwebhooks`` library, processes
each ``webhook-id`` once (the sender delivers at least once) and keeps, per
source event, when it first arrived and under which message ids: an event
seen under two ids was owed twice, which must never happen; a message seen
twice is a duplicate on the wire, which may, and is counted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["Ledger", "Receiver"]


@dataclass
class Ledger:
    """What arrived, per source event id: when first (monotonic), what (type, code),
    and under which message ids."""

    requests: int = 0
    refused: int = 0  # did not verify
    duplicates: int = 0  # a webhook-id already processed
    first: dict[str, float] = field(default_factory=dict)
    what: dict[str, tuple[str, str]] = field(default_factory=dict)
    messages: dict[str, set[str]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    arrivals: list[tuple[float, str]] = field(default_factory=list)  # (time, message id)

    def events(self, kind: str, code: str) -> list[float]:
        """When each distinct event of ``kind`` about ``code`` first arrived."""
        return [self.first[e] for e, w in self.what.items() if w == (kind, code)]


def _events(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(event id, code) of each source event a payload carries."""
    data = payload["data"]
    if payload["type"] == "link.clicked":
        return [(str(c["event_id"]), str(c["code"])) for c in data["clicks"]]
    return [(str(data["event_id"]), str(data.get("code", "")))]


class Receiver:
    def __init__(self, port: int, secret: str) -> None:
        self.port = port
        self.ledger = Ledger()
        self._webhook = Webhook(secret)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def up(self) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def down(self) -> None:
        """Stop listening: connections are refused until ``up``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _record(self, message_id: str, payload: dict[str, Any] | None) -> None:
        now = time.monotonic()
        with self._lock:
            ledger = self.ledger
            ledger.requests += 1
            if payload is None:
                ledger.refused += 1
                return
            if message_id in ledger.seen:
                ledger.duplicates += 1
                return
            ledger.seen.add(message_id)
            ledger.arrivals.append((now, message_id))
            for event_id, code in _events(payload):
                ledger.first.setdefault(event_id, now)
                ledger.what[event_id] = (payload["type"], code)
                ledger.messages.setdefault(event_id, set()).add(message_id)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    payload = receiver._webhook.verify(body, dict(self.headers.items()))
                except WebhookVerificationError:
                    payload = None
                receiver._record(self.headers.get("webhook-id", ""), payload)
                self.send_response(204 if payload is not None else 400)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
