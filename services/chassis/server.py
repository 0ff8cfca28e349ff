"""Running a service: uvicorn with our logging, uvloop and httptools."""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp

from services.chassis.config import ServiceSettings
from services.chassis.logging import configure_logging

__all__ = ["serve"]


def serve(app: ASGIApp, settings: ServiceSettings, service: str) -> None:
    """Serve ``app`` until SIGTERM/SIGINT, then drain within the shutdown bound."""
    configure_logging(service, settings.log_level)
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
