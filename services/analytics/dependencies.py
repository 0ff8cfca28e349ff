"""The analytics service's dependency vocabulary.

Who is calling comes from the identity the gateway signed; whether that
caller may see a link's stats is a rule of the service, not decided here::

    StatsServiceDep  the stats service of this process
    CallerDep        whoever the gateway vouches for, anonymous included
    CurrentUser      the id of an authenticated user (401 otherwise)
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from services.analytics.service import StatsService
from services.chassis.errors import UnauthorizedError
from services.chassis.identity import Identity, identity_of

__all__ = ["CallerDep", "CurrentUser", "StatsServiceDep"]


async def _stats(request: Request) -> StatsService:
    service: StatsService = request.app.state.stats
    return service


async def _caller(request: Request) -> Identity:
    return identity_of(request.scope)


async def _current_user(caller: Annotated[Identity, Depends(_caller)]) -> uuid.UUID:
    if caller.user_id is None:
        raise UnauthorizedError("Sign in, or send an API key.")
    try:
        return uuid.UUID(caller.user_id)
    except ValueError:
        # Only a gateway bug gets here; to this service it is nobody.
        raise UnauthorizedError("The caller is not a known user.") from None


StatsServiceDep = Annotated[StatsService, Depends(_stats)]
CallerDep = Annotated[Identity, Depends(_caller)]
CurrentUser = Annotated[uuid.UUID, Depends(_current_user)]
