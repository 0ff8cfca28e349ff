"""Wiring of the gateway: route table, upstream clients, health and docs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from starlette.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp

from gateway.config import GatewaySettings
from gateway.edge import EdgeRouter
from gateway.openapi import OpenApiMerger
from gateway.proxy import Upstream, UpstreamProxy, create_client
from services.chassis.app import build_app
from services.chassis.health import DependencyCheck
from services.chassis.http import RequestContextMiddleware

__all__ = ["create_app"]


def create_app(settings: GatewaySettings | None = None) -> ASGIApp:
    """The gateway as an ASGI app: request context, then the edge router, then FastAPI."""
    settings = settings or GatewaySettings()
    upstreams = {"link": Upstream("link", settings.link_service_url.rstrip("/"))}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = create_client(settings)
        app.state.upstreams = upstreams
        app.state.proxy = UpstreamProxy(client, settings.max_body_bytes)
        app.state.openapi = OpenApiMerger(client, upstreams)
        # Upstreams are reported, not required: the edge stays in rotation to
        # answer what it can (errors with bodies now, stale redirects later).
        app.state.health_checks = [
            DependencyCheck(name, _probe(client, u.base_url), critical=False)
            for name, u in upstreams.items()
        ]
        try:
            yield
        finally:
            app.state.draining = True
            await client.aclose()

    app = build_app(
        settings,
        title="URL shortener",
        description="The public API. Every path here is served through the gateway.",
        lifespan=lifespan,
        edge_middleware=False,
        docs=False,  # replaced by the merged document below
    )

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        merger: OpenApiMerger = request.app.state.openapi
        return JSONResponse(await merger.document(_own_openapi(app)))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="URL shortener API")

    return RequestContextMiddleware(EdgeRouter(app), access_log_enabled=settings.access_log)


def _own_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        app.openapi_schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
    return app.openapi_schema


def _probe(client: httpx.AsyncClient, base_url: str) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        response = await client.get(f"{base_url}/readyz", timeout=1.0)
        response.raise_for_status()

    return probe
