"""Who is calling, as the gateway vouches for it.

The gateway is the only place that authenticates. It tells a service who the
caller is in ``x-auth-*`` headers and signs them, together with the method,
the path, the client address and the time, with a key only the gateway and
the services share (``INTERNAL_AUTH_KEY``). A service refuses every request
whose signature is missing, wrong or older than ``MAX_AGE_SECONDS``: a client
that reaches a service's port directly, or replays a captured request
against another path, gets 401. Services never see passwords or tokens::

    x-auth-user:        user id, empty for an anonymous caller
    x-auth-method:      "jwt" | "api_key" | "anonymous"
    x-real-ip:          the client address the gateway saw
    x-gateway-ts:       unix seconds when the gateway signed
    x-gateway-sig:      hex HMAC-SHA256 over all of the above, method and path
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from typing import Final, Literal, NamedTuple

from starlette.types import ASGIApp, Receive, Scope, Send

from services.chassis.errors import send_problem

__all__ = [
    "MAX_AGE_SECONDS",
    "SIGNED_HEADERS",
    "GatewaySigner",
    "Identity",
    "RequireGatewayMiddleware",
    "identity_of",
]

AuthMethod = Literal["jwt", "api_key", "anonymous"]
MAX_AGE_SECONDS: Final = 30
SIGNED_HEADERS: Final = frozenset(
    {
        b"x-auth-user",
        b"x-auth-method",
        b"x-real-ip",
        b"x-gateway-ts",
        b"x-gateway-sig",
    }
)
_METHODS: Final = frozenset({"jwt", "api_key", "anonymous"})


class Identity(NamedTuple):
    """The caller: a user (by token or API key) or nobody in particular."""

    user_id: str | None
    method: AuthMethod
    client_ip: str

    @property
    def anonymous(self) -> bool:
        return self.user_id is None


class GatewaySigner:
    """Signs and checks the identity headers with the shared internal key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("INTERNAL_AUTH_KEY must be at least 16 bytes")
        self._key = key

    def _mac(self, *parts: bytes) -> str:
        message = b"\n".join(parts)
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def headers(self, method: str, path: bytes, identity: Identity) -> list[tuple[bytes, bytes]]:
        """The headers that carry ``identity`` for one request to ``path``."""
        ts = str(int(time.time())).encode()
        user = (identity.user_id or "").encode()
        how = identity.method.encode()
        ip = identity.client_ip.encode()
        sig = self._mac(ts, method.encode(), path, user, how, ip).encode()
        return [
            (b"x-auth-user", user),
            (b"x-auth-method", how),
            (b"x-real-ip", ip),
            (b"x-gateway-ts", ts),
            (b"x-gateway-sig", sig),
        ]

    def verify(
        self, method: str, path: bytes, headers: Iterable[tuple[bytes, bytes]]
    ) -> Identity | None:
        """The identity the gateway vouched for, or None if it did not."""
        found = {k: v for k, v in headers if k in SIGNED_HEADERS}
        ts, sig = found.get(b"x-gateway-ts", b""), found.get(b"x-gateway-sig", b"")
        if not ts.isdigit() or abs(time.time() - int(ts)) > MAX_AGE_SECONDS:
            return None
        user, how = found.get(b"x-auth-user", b""), found.get(b"x-auth-method", b"")
        ip = found.get(b"x-real-ip", b"")
        expected = self._mac(ts, method.encode(), path, user, how, ip)
        # compare_digest: the time taken must not reveal how much of a guess was right.
        if not hmac.compare_digest(expected.encode(), sig) or how.decode() not in _METHODS:
            return None
        method_name: AuthMethod = how.decode()  # type: ignore[assignment]
        return Identity(user.decode() or None, method_name, ip.decode())


def identity_of(scope: Scope) -> Identity:
    """The verified identity of the current request (set by the middleware)."""
    identity: Identity = scope["state"]["identity"]
    return identity


class RequireGatewayMiddleware:
    """Refuses requests the gateway did not sign; exempts health and metrics."""

    def __init__(self, app: ASGIApp, *, signer: GatewaySigner, exempt: frozenset[str]) -> None:
        self.app = app
        self.signer = signer
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        path = scope.get("raw_path") or scope["path"].encode()
        identity = self.signer.verify(scope["method"], path, scope["headers"])
        if identity is None:
            await send_problem(
                send,
                401,
                "gateway_required",
                "Not through the gateway",
                "Requests reach this service only through the gateway.",
            )
            return
        scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send)
