"""The edge: what happens to a request for a routed path, and in which order.

    client address (trusted proxies) -> authentication -> rate limit -> proxy

Proxied requests never enter FastAPI: this pure ASGI callable matches the
path and hands the request on, with no FastAPI routing, validation or
dependency resolution on the hot path (~80 µs a request on this machine).
Everything else (health, metrics, the merged OpenAPI document, unknown
paths) is the FastAPI app's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from gateway.auth import ApiKeyVerifier, Authenticator, AuthError
from gateway.clientip import ClientAddress
from gateway.jwks import KeysUnavailable
from gateway.proxy import Upstream, UpstreamProxy
from gateway.ratelimit import RateLimiter, policy_for
from gateway.routes import match_route
from services.chassis.errors import send_problem

__all__ = ["Edge", "EdgeRouter"]

log = logging.getLogger(__name__)
_API_KEYS = "/api/v1/api-keys/"
_LINKS = "/api/v1/links/"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Edge:
    upstreams: dict[str, Upstream]
    addresses: ClientAddress
    auth: Authenticator
    api_keys: ApiKeyVerifier
    limiter: RateLimiter
    proxy: UpstreamProxy

    async def handle(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        client_ip = self.addresses.of(scope)
        try:
            caller = await self.auth.authenticate(scope["headers"], client_ip)
        except AuthError as exc:
            headers = [(b"www-authenticate", b'Bearer error="invalid_token"')]
            await send_problem(send, 401, exc.code, "Unauthorized", exc.detail, headers)
            return
        except (httpx.HTTPError, KeysUnavailable) as exc:
            log.warning("credential check failed", extra={"error": repr(exc)})
            await send_problem(
                send,
                503,
                "auth_unavailable",
                "Authentication unavailable",
                "Credentials cannot be checked right now.",
                [(b"retry-after", b"1")],
            )
            return
        method, path = scope["method"], scope["path"]
        decision = await self.limiter.check(
            policy_for(method, path, name), caller.limit_key, caller.identity.anonymous
        )
        if decision.unavailable:
            await send_problem(
                send,
                503,
                "rate_limiter_unavailable",
                "Try again shortly",
                "This endpoint is closed while its limits cannot be enforced.",
                [(b"retry-after", b"5")],
            )
            return
        if not decision.allowed:
            await send_problem(
                send,
                429,
                "rate_limited",
                "Too many requests",
                "Slow down; see Retry-After.",
                decision.headers,
            )
            return
        changed = _changed_link(method, path)
        if changed is not None:
            # Before (answers already in flight are not kept) and after (nor
            # one read while the change was being committed).
            self.proxy.fallback.stale.invalidate(changed)
        status = await self.proxy.forward(
            self.upstreams[name], scope, receive, send, caller.identity, decision.headers
        )
        if changed is not None:
            self.proxy.fallback.stale.invalidate(changed)
        if method == "DELETE" and status == 204 and path.startswith(_API_KEYS):
            self.api_keys.forget(path.removeprefix(_API_KEYS))


def _changed_link(method: str, path: str) -> str | None:
    """The code of the link this request may change (any write under
    ``/api/v1/links/{code}``), or None."""
    if method in _READS or not path.startswith(_LINKS):
        return None
    return path.removeprefix(_LINKS).split("/", 1)[0] or None


class EdgeRouter:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = match_route(scope["path"])
            if route is not None:
                # Read by the request metrics and the access log: a bounded label.
                scope["route_template"] = route.label
                edge: Edge = self.app.state.edge
                await edge.handle(route.upstream, scope, receive, send)
                return
        await self.app(scope, receive, send)
