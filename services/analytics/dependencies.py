"""The analytics service's dependency vocabulary.

Whether a caller may see a link's stats is a rule of the service, not
decided here::

    StatsServiceDep  the stats service of this process
    CallerDep        whoever the gateway vouches for (services.chassis.dependencies)
    CurrentUser      the id of an authenticated user, 401 otherwise (idem)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.analytics.service import StatsService
from services.chassis.dependencies import CallerDep, CurrentUser, from_state

__all__ = ["CallerDep", "CurrentUser", "StatsServiceDep"]

StatsServiceDep = Annotated[StatsService, Depends(from_state("stats"))]
