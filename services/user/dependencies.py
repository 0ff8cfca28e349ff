"""The user service's dependency vocabulary::

CurrentUser      the id of an authenticated user (services.chassis.dependencies)
InteractiveUser  the id of a user signed in with a token, not an API key
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from services.chassis.dependencies import CallerDep, CurrentUser, from_state
from services.user.api_keys import ApiKeyService
from services.user.exceptions import InteractiveLoginRequired
from services.user.service import UserService

__all__ = [
    "ApiKeyServiceDep",
    "CurrentUser",
    "InteractiveUser",
    "UserServiceDep",
]


async def _interactive_user(caller: CallerDep, user_id: CurrentUser) -> uuid.UUID:
    # A leaked API key must not be able to mint more keys, or revoking it
    # would not end the leak.
    if caller.method != "jwt":
        raise InteractiveLoginRequired("API keys are managed after signing in, not with a key.")
    return user_id


UserServiceDep = Annotated[UserService, Depends(from_state("users"))]
ApiKeyServiceDep = Annotated[ApiKeyService, Depends(from_state("api_keys"))]
InteractiveUser = Annotated[uuid.UUID, Depends(_interactive_user)]
