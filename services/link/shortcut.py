"""The link service's hot paths without FastAPI: ``GET /{code}``, batches of
them, and ``POST /api/v1/links`` (services/link/creation.py).

All sit inside the edge middleware (request id, RED metrics, access line,
the gateway's signature check) and call the same functions FastAPI's route
does, with what FastAPI would inject: the objects the lifespan put on
``app.state``.
"""

from __future__ import annotations

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from services.chassis.deadline import accept_budget
from services.chassis.health import UNSIGNED_PATHS
from services.chassis.lookups import BATCH_PATH
from services.link.batch import handled, serve_batch
from services.link.creation import CREATE_PATH, serve_create
from services.link.router import REDIRECT_TEMPLATE, follow

__all__ = ["HotPathShortcut"]


class HotPathShortcut:
    """Serves ``GET /{code}`` by calling ``follow`` directly, without FastAPI;
    and a creation whose body FastAPI would accept, by calling ``create_link``.

    Why: a redirect the gateway's cache does not hold comes here, and
    FastAPI's routing, dependency solving and request and response wrappers
    cost more CPU than the redirect itself (py-spy under wrk: ``follow`` was
    25-30% of the samples, FastAPI and Starlette around it about half).
    Called directly, a cache hit takes 40-48% less CPU
    (docs/adr/0011-the-redirect-without-fastapi.md).

    It sits inside the edge middleware, so the request id, RED metrics,
    access line and the gateway's signature check apply as before, and it
    calls ``follow`` with what FastAPI would inject: the objects the lifespan
    put on ``app.state``. ``scope["route_template"]`` gives the metrics and
    the span their ``/{code}``, as the gateway's edge does (gateway/edge.py).
    The FastAPI route stays: it is the documented operation, and the
    reference tests/test_redirect_shortcut.py holds the shortcut to.

    It takes GET requests for a path of one segment, except the paths every
    service serves itself (health, metrics, docs), which FastAPI routes
    before ``/{code}`` too. An error is answered by the app's own exception
    handlers, as FastAPI's exception middleware would; one without a handler
    propagates to the server error middleware (500), as from the route.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            accept_budget(scope)  # how long the gateway waits (services/chassis/deadline.py)
        if scope["type"] == "http" and scope["path"] == BATCH_PATH and scope["method"] == "POST":
            scope["route_template"] = BATCH_PATH
            await serve_batch(Request(scope, receive), send)
            return
        if scope["type"] == "http" and scope["path"] == CREATE_PATH and scope["method"] == "POST":
            await serve_create(self.app, scope, receive, send)
            return
        if not _is_redirect(scope):
            await self.app(scope, receive, send)
            return
        scope["route_template"] = REDIRECT_TEMPLATE
        request = Request(scope, receive)
        state = request.app.state
        code = scope["path"][1:]
        answer = follow(code, request, state.resolver, state.clicks, state.settings)
        response = await handled(request, answer)
        await response(scope, receive, send)


def _is_redirect(scope: Scope) -> bool:
    """Whether FastAPI would route this request to ``follow``."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return False
    path: str = scope["path"]
    return len(path) > 1 and path.count("/") == 1 and path not in UNSIGNED_PATHS
