"""Errors that carry their HTTP meaning, and the one place that renders them.

Domain code raises these; it never builds an HTTP response. Every error body
is an RFC 9457 problem document with a stable machine-readable ``code``::

    DomainError              400 bad_request
    ├── UnauthorizedError    401 authentication_required
    ├── ForbiddenError       403 forbidden
    ├── NotFoundError        404 not_found
    ├── ConflictError        409 conflict
    ├── GoneError            410 gone
    ├── PayloadTooLarge      413 payload_too_large
    └── UnavailableError     503 unavailable

A database or cache that cannot be reached (refused, reset, timed out)
answers 503 ``dependency_unavailable`` with ``Retry-After``, not 500.

Services subclass these with their own ``code`` (``alias_taken``...).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Scope, Send

from services.chassis.context import request_id_var

__all__ = [
    "PROBLEM_JSON",
    "ConflictError",
    "DomainError",
    "ForbiddenError",
    "GoneError",
    "NotFoundError",
    "PayloadTooLarge",
    "UnauthorizedError",
    "UnavailableError",
    "allowed_methods",
    "install_error_handlers",
    "problem_body",
    "problem_response",
    "send_internal_error",
    "send_problem",
]

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class DomainError(Exception):
    """A rule of the domain was broken; the subclass says which and how loudly."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})


class UnauthorizedError(DomainError):
    """No (valid) credentials; the client should authenticate and retry."""

    status_code = 401
    code = "authentication_required"
    title = "Authentication required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"www-authenticate": "Bearer"})


class ForbiddenError(DomainError):
    status_code = 403
    code = "forbidden"
    title = "Forbidden"


class NotFoundError(DomainError):
    status_code = 404
    code = "not_found"
    title = "Not found"


class ConflictError(DomainError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class GoneError(DomainError):
    status_code = 410
    code = "gone"
    title = "Gone"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnavailableError(DomainError):
    status_code = 503
    code = "unavailable"
    title = "Service unavailable"


def problem_body(status: int, code: str, title: str, detail: str, **extra: Any) -> bytes:
    """The JSON bytes of a problem document, with the request id for support."""
    body: dict[str, Any] = {"status": status, "code": code, "title": title, "detail": detail}
    request_id = request_id_var.get()
    if request_id is not None:
        body["request_id"] = request_id
    body.update(extra)
    return orjson.dumps(body)


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem document as a response."""
    return Response(
        problem_body(status, code, title, detail, **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


async def send_problem(  # noqa: PLR0917 - reads like problem_body, plus the channel
    send: Send,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with a problem document from pure ASGI code (middleware, the proxy)."""
    body = problem_body(status, code, title, detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _domain_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return problem_response(exc.status_code, exc.code, exc.title, exc.detail, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(err.get("loc", ())), "type": err.get("type"), "msg": err.get("msg")}
        for err in exc.errors()
    ]
    if any(err["type"] == "json_invalid" for err in errors):
        return problem_response(
            400, "malformed_json", "Malformed JSON", "The body is not valid JSON."
        )
    return problem_response(
        422,
        "validation_failed",
        "Validation failed",
        "The request has invalid fields.",
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "route_not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, f"http_{exc.status_code}")
    headers = exc.headers
    if exc.status_code == 405:
        # Starlette's own Allow (as "Allow") is replaced, not joined.
        others = {k: v for k, v in (headers or {}).items() if k.lower() != "allow"}
        headers = {**others, "allow": allowed_methods(request.app.router.routes, request.scope)}
    return problem_response(exc.status_code, code, str(exc.detail), str(exc.detail), headers)


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> str:
    """Every method the routes serve at the scope's path, for a 405's ``Allow``.

    Starlette answers 405 from the first route whose path matches, naming
    only that route's methods; a path served by several routes (``GET`` and
    ``POST /api/v1/links``) must name them all (RFC 9110 15.5.6). Each method
    is asked of the routes as a request would be: routers included in others
    answer ``matches`` for their own routes, and expose no list of methods.
    """
    routes = list(routes)
    return ", ".join(
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    )


_METHODS: Final = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


# A database or cache that cannot be reached: the request is fine, the
# moment is not. Transactions roll back, so nothing is left half-written.
# A service with a database adds its driver's errors (services.chassis.db
# LOST_CONNECTION); the gateway has none and never imports them.
_LOST_DEPENDENCY: tuple[type[Exception], ...] = (
    OSError,  # refused, reset, unreachable (ConnectionError is one)
    TimeoutError,
)


async def _dependency_lost(_: Request, exc: Exception) -> Response:
    log.warning("dependency unavailable", extra={"error": repr(exc)[:300]})
    return problem_response(
        503,
        "dependency_unavailable",
        "Service unavailable",
        "A store this request needs is out of reach or too slow right now. Try again shortly.",
        {"retry-after": "2"},
    )


# A bug: the request id in the body finds the traceback in the logs.
_INTERNAL_ERROR: Final = (500, "internal_error", "Internal error", "An unexpected error occurred.")


async def _unexpected_error(_: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return problem_response(*_INTERNAL_ERROR)


async def send_internal_error(send: Send, exc: Exception) -> None:
    """Log a bug and answer 500 with a problem document, from pure ASGI code.

    For the outermost middleware: whatever escaped the app beneath it
    reaches the client as a problem document with its request id, not as the
    server's bare ``text/plain`` 500.
    """
    log.error("unhandled error", exc_info=exc)
    await send_problem(send, *_INTERNAL_ERROR)


def install_error_handlers(
    app: FastAPI,
    unreachable: tuple[type[Exception], ...] = (),
    unreachable_when: tuple[type[Exception], Callable[[Exception], bool]] | None = None,
) -> None:
    """Render every error the app can raise as a problem document; ``unreachable``:
    more errors that mean a store cannot be reached (503); ``unreachable_when``:
    an error type whose content tells it (a driver's generic error carrying a
    connection failure's code), and the test: 503 if it says so, else a bug (500)."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for lost in (*_LOST_DEPENDENCY, *unreachable):
        app.add_exception_handler(lost, _dependency_lost)
    if unreachable_when is not None:
        kind, says_lost = unreachable_when

        async def lost_or_bug(request: Request, exc: Exception) -> Response:
            if says_lost(exc):
                return await _dependency_lost(request, exc)
            return await _unexpected_error(request, exc)

        app.add_exception_handler(kind, lost_or_bug)
    app.add_exception_handler(Exception, _unexpected_error)
