"""The common shape of every FastAPI process."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from starlette.types import ASGIApp

from services.chassis.config import ServiceSettings
from services.chassis.errors import install_error_handlers
from services.chassis.health import UNSIGNED_PATHS, health_router
from services.chassis.heap import freeze_after
from services.chassis.http import BodySizeLimitMiddleware, RequestMiddleware
from services.chassis.identity import GatewaySigner, RequireGatewayMiddleware
from services.chassis.metrics import metrics_router
from services.chassis.openapi import install_problem_schema

__all__ = ["build_app"]


def build_app(
    settings: ServiceSettings,
    *,
    title: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    version: str = "1.0.0",
    description: str = "",
    edge_middleware: bool = True,
    docs: bool = True,
    signer: GatewaySigner | None = None,
    unsigned_paths: frozenset[str] = UNSIGNED_PATHS,
    shortcut: Callable[[ASGIApp], ASGIApp] | None = None,
    unreachable: tuple[type[Exception], ...] = (),
    unreachable_when: tuple[type[Exception], Callable[[Exception], bool]] | None = None,
) -> FastAPI:
    """A FastAPI app with health, metrics, problem errors, request ids and body limits.

    ``edge_middleware=False`` leaves request ids, body limits and request
    metrics (``services.chassis.red``) to a caller
    that wraps the app in them itself (the gateway, whose proxied requests
    never enter FastAPI); ``docs=False`` leaves the OpenAPI routes to it too.

    With a ``signer``, only requests the gateway signed get in, except to
    ``unsigned_paths``. The refusal runs inside the request middleware, so a
    refused request has its id, its metrics and its access line like any other.

    ``shortcut`` wraps FastAPI's own routing, inside all of the above: a
    pure ASGI app that answers a service's hottest route itself and hands
    every other request on (the link service's redirects and creations,
    ``services.link.shortcut.HotPathShortcut``).

    ``unreachable``: errors besides OSError and TimeoutError that mean a
    store is out of reach, answered 503 (a service with a database passes
    ``services.chassis.db.LOST_CONNECTION``); ``unreachable_when``: the same,
    told by an error's content (``services.chassis.db.DATABASE_UNAVAILABLE_WHEN``).
    """
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=freeze_after(lifespan),
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry spans, metrics and logs switch on as soon
        # as a tracer provider exists. Off: the server span comes from
        # services.chassis.tracing, outermost, for FastAPI's routes and the
        # gateway's proxied requests alike, and a redirect would otherwise pay
        # for two server spans and one per dependency.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app, unreachable, unreachable_when)
    install_problem_schema(app)
    app.include_router(health_router())
    app.include_router(metrics_router())
    if shortcut is not None:
        app.add_middleware(shortcut)  # added first: runs last, right before routing
    if edge_middleware:
        app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
        if signer is not None:
            app.add_middleware(RequireGatewayMiddleware, signer=signer, exempt=unsigned_paths)
        # Last added runs first: it times the rest and writes the access line.
        app.add_middleware(RequestMiddleware, access_log_enabled=settings.access_log)
    return app
