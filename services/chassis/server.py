"""Running a service: uvicorn with our logging, tracing, uvloop and httptools."""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp

from services.chassis.config import ServiceSettings
from services.chassis.health import UNSIGNED_PATHS
from services.chassis.logging import configure_logging
from services.chassis.tracing import TracingMiddleware, start_tracing

__all__ = ["serve"]

# The public entry: it starts every trace itself (see TracingMiddleware).
PUBLIC_EDGE = "gateway"


def serve(app: ASGIApp, settings: ServiceSettings, service: str) -> None:
    """Serve ``app`` until SIGTERM/SIGINT, then drain within the shutdown bound."""
    configure_logging(service, settings.log_level)
    # Here, not at import and not per app: one provider per process, and the
    # outermost wrapper sees every request, the gateway's proxied ones included.
    provider = start_tracing(service)
    if provider is not None:
        app = TracingMiddleware(
            app,
            trust_incoming=service != PUBLIC_EDGE,
            untraced=UNSIGNED_PATHS,
            # Exports what the batch processor still holds, once the lifespan is done.
            on_shutdown=provider.shutdown,
        )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,  # RequestContextMiddleware writes the access line
        server_header=False,
        # uvicorn would otherwise rewrite the client address from
        # X-Forwarded-For for connections from 127.0.0.1; the gateway decides
        # whom to believe itself (gateway/clientip.py).
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
        timeout_keep_alive=30,
    )
