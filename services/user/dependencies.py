"""The user service's dependency vocabulary.

Who is calling comes from the identity the gateway signed (the middleware
has already refused anything unsigned); these turn it into what a route
needs, or into the right 401/403::

    CurrentUser      the id of an authenticated user (token or API key)
    InteractiveUser  the id of a user signed in with a token, not an API key
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from services.chassis.errors import UnauthorizedError
from services.chassis.identity import Identity, identity_of
from services.user.api_keys import ApiKeyService
from services.user.exceptions import InteractiveLoginRequired
from services.user.service import UserService

__all__ = [
    "ApiKeyServiceDep",
    "CurrentUser",
    "InteractiveUser",
    "UserServiceDep",
]


async def _users(request: Request) -> UserService:
    service: UserService = request.app.state.users
    return service


async def _api_keys(request: Request) -> ApiKeyService:
    service: ApiKeyService = request.app.state.api_keys
    return service


async def _identity(request: Request) -> Identity:
    return identity_of(request.scope)


async def _current_user(identity: Annotated[Identity, Depends(_identity)]) -> uuid.UUID:
    if identity.user_id is None:
        raise UnauthorizedError("Sign in, or send an API key.")
    try:
        return uuid.UUID(identity.user_id)
    except ValueError:
        # Only a gateway bug gets here; to this service it is nobody.
        raise UnauthorizedError("The caller is not a known user.") from None


async def _interactive_user(
    identity: Annotated[Identity, Depends(_identity)],
    user_id: Annotated[uuid.UUID, Depends(_current_user)],
) -> uuid.UUID:
    # A leaked API key must not be able to mint more keys, or revoking it
    # would not end the leak.
    if identity.method != "jwt":
        raise InteractiveLoginRequired("API keys are managed after signing in, not with a key.")
    return user_id


UserServiceDep = Annotated[UserService, Depends(_users)]
ApiKeyServiceDep = Annotated[ApiKeyService, Depends(_api_keys)]
CurrentUser = Annotated[uuid.UUID, Depends(_current_user)]
InteractiveUser = Annotated[uuid.UUID, Depends(_interactive_user)]
