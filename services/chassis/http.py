"""Pure ASGI middleware shared by every process.

Pure ASGI rather than ``BaseHTTPMiddleware``: the latter runs the app in a
separate task, which breaks context variables (and with them request ids and
trace context) and costs a measurable share of a redirect.
"""

from __future__ import annotations

import time
from random import random

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.chassis.accesslog import write_access_line
from services.chassis.context import REQUEST_ID_HEADER, accept_request_id, request_id_var
from services.chassis.errors import send_internal_error, send_problem
from services.chassis.red import RequestMetrics

__all__ = ["BodySizeLimitMiddleware", "RequestMiddleware", "etag_matches", "read_body"]

_REQUEST_ID = REQUEST_ID_HEADER.encode()


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header lets a GET answer 304 (RFC 9110 13.1.2).

    The header is ``*`` or a list of tags, compared weakly: ``W/"x"`` matches ``"x"``.
    """
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


class RequestMiddleware:
    """The outermost wrapper of every request: gives it an id (kept from the
    caller when sane) and echoes it in the response, counts and times it
    (RED metrics, services/chassis/red.py), and writes its access line.
    Whatever the app beneath raises before answering becomes a 500 problem
    document with the request id, never the server's bare ``text/plain``.

    One wrapper for the three, not three middlewares: each layer costs a
    closure and a call per message on every redirect.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        access_log_enabled: bool = True,
        access_log_sample: float = 1.0,
    ) -> None:
        self.app = app
        self.metrics = RequestMetrics()
        self.access_log_enabled = access_log_enabled
        # Share of answers below 400 logged (1.0 unless an operator lowers
        # it); errors always are.
        self.access_log_sample = access_log_sample

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        raw_id = next((v for k, v in scope["headers"] if k == _REQUEST_ID), None)
        request_id = accept_request_id(raw_id)
        # Not reset afterwards: each request runs in its own task with its own
        # context, and the error handler outside this middleware still needs it.
        request_id_var.set(request_id)
        status = 0
        answered = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (_REQUEST_ID, request_id.encode()),
                ]
            elif not message.get("more_body", False):
                answered = True
            await send(message)

        self.metrics.enter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if answered:
                # Starlette's outermost handler answered (and our handler for
                # Exception logged it), then re-raised for the server to log:
                # a second traceback for the same bug. Nothing is left to do.
                pass
            elif status:  # the answer has begun: all that is left is to cut it short
                raise
            else:
                await send_internal_error(send_with_id, exc)
        finally:
            # No answer and no error: the client went away first (nginx's 499),
            # not a server error that would page someone.
            status = status or 499
            seconds = time.perf_counter() - started
            self.metrics.leave(scope, status, seconds)
            sample = self.access_log_sample
            sampled = sample >= 1.0 or random() < sample  # noqa: S311 - sampling, not secrets
            if self.access_log_enabled and (status >= 400 or sampled):
                write_access_line(scope["method"], scope["path"], status, round(seconds * 1000, 3))


class _BodyTooLarge(Exception):
    pass


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is larger than ``limit``."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


class BodySizeLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with 413 before the app parses them,
    whether or not the client declared a Content-Length."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await self._reject(send)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        await send_problem(
            send,
            413,
            "payload_too_large",
            "Payload too large",
            f"The body must be at most {self.max_bytes} bytes.",
            headers=[(b"connection", b"close")],
        )
