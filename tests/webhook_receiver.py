"""A webhook receiver the tests control: on 127.0.0.1, it records every request
and answers as told (a status, or a hang of bounded length)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Received", "Receiver", "receiver"]

MAX_HANG_SECONDS = 30.0


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() when it arrived
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        # Answered first, one per request, before ``status``.
        self.statuses: list[int] = []
        self.hang_seconds = 0.0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.requests.append(Received(time.monotonic(), headers, body))
                    queued = receiver.statuses
                    status = queued.pop(0) if queued else receiver.status
                    hang = receiver.hang_seconds
                if hang:
                    time.sleep(min(hang, MAX_HANG_SECONDS))
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def receiver(status: int = 200) -> Iterator[Receiver]:
    """A started receiver, stopped after the ``with``."""
    running = Receiver()
    running.status = status
    running.start()
    try:
        yield running
    finally:
        running.stop()
