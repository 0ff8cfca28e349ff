"""A webhook receiver written only from the ``standardwebhooks`` library's documentation.

    WEBHOOK_SECRET=whsec_... python docs/examples/webhook_receiver.py 127.0.0.1 9000 received.jsonl

It verifies every request the way the library's README shows
(``Webhook(secret).verify(payload, headers)`` on the raw body), answers 400
to anything that does not verify, and processes each message once: the
sender delivers at least once, so a ``webhook-id`` already seen is answered
204 again and not processed again. Each request appends one line to the
record file: ``{"webhook_id", "duplicate", "payload"}``. ``GET /`` answers
200, for whoever waits for it to be up.

Only the standard library and ``standardwebhooks``: nothing here depends on
the shortener's code.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def serve(host: str, port: int, record: Path, secret: str) -> None:
    wh = Webhook(secret)
    seen: set[str] = set()  # a real receiver keeps these in its database, for days
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            # The raw body exactly as received, before any JSON parsing.
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = dict(self.headers.items())
            try:
                payload = wh.verify(body, headers)
            except WebhookVerificationError:
                self._answer(400)
                return
            webhook_id = self.headers["webhook-id"]
            with lock:
                duplicate = webhook_id in seen
                seen.add(webhook_id)
                line = {"webhook_id": webhook_id, "duplicate": duplicate, "payload": payload}
                with record.open("a") as out:
                    out.write(json.dumps(line) + "\n")
            self._answer(204)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with ThreadingHTTPServer((host, port), Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    host, port, record = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    serve(host, port, record, os.environ["WEBHOOK_SECRET"])
