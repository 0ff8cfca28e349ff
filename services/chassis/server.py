"""Running a service: uvicorn with our logging, tracing, uvloop and httptools."""

from __future__ import annotations

import socket
import sys

import uvicorn
from starlette.types import ASGIApp

from services.chassis.accesslog import configure_access_log
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
    configure_access_log(service)
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
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,  # RequestMiddleware writes the access line
        server_header=False,
        # uvicorn would otherwise rewrite the client address from
        # X-Forwarded-For for connections from 127.0.0.1; the gateway decides
        # whom to believe itself (gateway/clientip.py).
        proxy_headers=False,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    # At SIGTERM uvicorn stops listening, lets in-flight requests finish (within
    # the bound), closes idle connections, then runs the lifespan's shutdown:
    # buffered events are flushed there.
    sockets = [_bind(settings.host, settings.port, settings.reuse_port)]
    if settings.own_port is not None:
        sockets.append(_bind(settings.host, settings.own_port, settings.reuse_port))
    server.run(sockets=sockets)
    if not server.started:
        sys.exit(3)  # as uvicorn.run does: the app failed to start


def _bind(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A bound socket, not yet listening: uvicorn listens once the app has
    started, so no connection waits on a process still starting up, and
    "this process listens" means "this process is ready" to whoever rolls it.

    With ``reuse_port``, another process may bind the port too
    (SO_REUSEPORT): the kernel spreads new connections over every process
    listening, which is how the local stack runs gateway replicas side by
    side and rolls one without a refused connection.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock
