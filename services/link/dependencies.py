"""The link service's dependency vocabulary (all built once, in the lifespan)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.chassis.dependencies import CallerDep, from_state
from services.link.clicks import ClickRecorder
from services.link.config import LinkSettings
from services.link.resolver import LinkResolver
from services.link.service import LinkService

__all__ = ["CallerDep", "ClicksDep", "LinkServiceDep", "ResolverDep", "SettingsDep"]

LinkServiceDep = Annotated[LinkService, Depends(from_state("links"))]
ResolverDep = Annotated[LinkResolver, Depends(from_state("resolver"))]
ClicksDep = Annotated[ClickRecorder, Depends(from_state("clicks"))]
SettingsDep = Annotated[LinkSettings, Depends(from_state("settings"))]
