"""Dependencies every service shares: what the lifespan built, and who is calling.

Who is calling comes from the identity the gateway signed (the middleware has
already refused anything unsigned)::

    CallerDep    whoever the gateway vouches for, anonymous included
    CurrentUser  the id of an authenticated user (token or API key), 401 otherwise

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker
thread, a thread hop per dependency per request, which the redirect profile
showed as a measurable share of the hot path (docs/performance.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from services.chassis.errors import UnauthorizedError
from services.chassis.identity import Identity, identity_of

__all__ = ["CallerDep", "CurrentUser", "from_state"]


def from_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency returning ``app.state.<name>`` (built once, in the lifespan)."""

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    dependency.__name__ = f"state_{name}"
    return dependency


async def _caller(request: Request) -> Identity:
    return identity_of(request.scope)


# Named for the OpenAPI documents only: the gateway verifies either one and
# signs who the caller is; the service never reads them. Declared, they put
# securitySchemes in the document and ``security`` on every operation that
# needs a user, which clients and schemathesis's ignored_auth check read.
_BEARER = HTTPBearer(auto_error=False, description="An access token, or an API key.")
_API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


async def _current_user(
    caller: Annotated[Identity, Depends(_caller)],
    _token: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    _key: Annotated[str | None, Security(_API_KEY)],
) -> uuid.UUID:
    if caller.user_id is None:
        raise UnauthorizedError("Sign in, or send an API key.")
    try:
        return uuid.UUID(caller.user_id)
    except ValueError:
        # Only a gateway bug gets here; to a service it is nobody.
        raise UnauthorizedError("The caller is not a known user.") from None


CallerDep = Annotated[Identity, Depends(_caller)]
CurrentUser = Annotated[uuid.UUID, Depends(_current_user)]
