"""Wiring of the gateway: route table, upstream clients, identity, limits, docs."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import httpx
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp

from gateway.auth import ApiKeyVerifier, Authenticator
from gateway.clientip import ClientAddress
from gateway.clients import create_client, create_proxy_session, create_transport
from gateway.config import GatewaySettings
from gateway.edge import Edge, EdgeRouter
from gateway.fallback import Fallback
from gateway.jwks import JwksCache
from gateway.linkchanges import LinkChangeListener
from gateway.lookups import RedirectLookups, create_lookup_session
from gateway.openapi import OpenApiMerger
from gateway.proxy import Upstream, UpstreamProxy
from gateway.ratelimit import RateLimiter
from gateway.readmodel import read_model_for
from gateway.resilience import build_guard
from gateway.stale import StaleClicks, StaleRedirects
from gateway.web import web_router
from services.chassis.app import build_app
from services.chassis.events import CLICKS_TOPIC
from services.chassis.health import DependencyCheck
from services.chassis.http import RequestMiddleware
from services.chassis.identity import GatewaySigner
from services.chassis.kafka import EventPublisher

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(settings: GatewaySettings | None = None) -> ASGIApp:
    """The gateway as an ASGI app: request context, then the edge router, then FastAPI."""
    settings = settings or GatewaySettings()
    upstreams = {
        name: Upstream(name, url.rstrip("/"), build_guard(name, settings))
        for name, url in (
            ("link", settings.link_service_url),
            ("user", settings.user_service_url),
            ("analytics", settings.analytics_service_url),
            ("webhooks", settings.webhooks_service_url),
        )
    }
    signer = GatewaySigner(settings.internal_auth_key.get_secret_value().encode())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        transport = create_transport(settings)
        client = create_client(settings, transport)
        lookups_session = create_lookup_session(settings)
        proxy_session = create_proxy_session(settings)
        limiter = RateLimiter(settings)
        limiter.start()
        # Only the clicks of redirects the gateway answers itself (gateway/stale.py).
        clicks = EventPublisher.for_clicks(settings, CLICKS_TOPIC)
        await clicks.start()
        redirects = StaleRedirects(
            settings.stale_max_entries,
            settings.stale_max_age_seconds,
            freshness_seconds=settings.redirect_cache_seconds,
        )
        fallback = Fallback(redirects, StaleClicks(clicks, _ip_hash_key(settings)))
        link_changes = LinkChangeListener(settings, redirects)
        read_model = read_model_for(settings)
        if settings.redirect_cache_seconds > 0:
            link_changes.start()
        user_url = upstreams["user"].base_url
        api_keys = ApiKeyVerifier(client, user_url, signer, settings.api_key_cache_seconds)
        jwks = JwksCache(client, f"{user_url}/.well-known/jwks.json")
        jwks.prefetch()
        app.state.edge = Edge(
            upstreams=upstreams,
            addresses=ClientAddress(settings.trusted_proxies.split(",")),
            auth=Authenticator(
                jwks,
                api_keys,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            ),
            api_keys=api_keys,
            limiter=limiter,
            proxy=UpstreamProxy(
                proxy_session,
                signer,
                settings.max_body_bytes,
                fallback,
                lookups=_lookups(settings, lookups_session, upstreams["link"], signer),
                read_model=read_model,
            ),
        )
        app.state.openapi = OpenApiMerger(client, upstreams)
        # Upstreams are reported, not required: the edge stays in rotation to
        # answer what it can (errors with bodies now, stale redirects later).
        app.state.health_checks = [
            DependencyCheck(name, _probe(client, u.base_url), critical=False)
            for name, u in upstreams.items()
        ] + [DependencyCheck("redis", _storage_probe(limiter), critical=False)]
        # Once this is done, the heap built so far is frozen (services/chassis/heap.py).
        try:
            yield
        finally:
            app.state.draining = True
            await link_changes.stop()
            await client.aclose()
            await lookups_session.close()
            await proxy_session.close()
            if read_model is not None:
                await read_model.close()
            await limiter.stop()
            await clicks.stop(settings.shutdown_timeout_seconds)

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
        return JSONResponse(await merger.document(app.openapi()))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="URL shortener API")

    # The web page at / and its fingerprinted assets (gateway/web/, docs/web.md).
    app.include_router(web_router())

    return RequestMiddleware(
        EdgeRouter(app),
        access_log_enabled=settings.access_log,
        access_log_sample=settings.access_log_sample,
    )


def _lookups(
    settings: GatewaySettings,
    session: aiohttp.ClientSession,
    link: Upstream,
    signer: GatewaySigner,
) -> RedirectLookups | None:
    if settings.link_batches_in_flight == 0:
        return None
    return RedirectLookups(
        session,
        link.base_url,
        signer,
        link.guard,
        max_visits=settings.link_batch_max_visits,
        max_in_flight=settings.link_batches_in_flight,
    )


def _ip_hash_key(settings: GatewaySettings) -> bytes:
    if settings.ip_hash_key is None:
        # Each process would draw its own key and count one visitor twice.
        log.warning("GATEWAY_IP_HASH_KEY is not set: replayed clicks use a random key")
        return secrets.token_bytes(32)
    return settings.ip_hash_key.get_secret_value().encode()


def _probe(client: httpx.AsyncClient, base_url: str) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        response = await client.get(f"{base_url}/readyz", timeout=1.0)
        response.raise_for_status()

    return probe


def _storage_probe(limiter: RateLimiter) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        if not await limiter.reachable():
            raise ConnectionError("rate-limit storage unreachable")

    return probe
