"""The link service's dependency vocabulary.

Every dependency is ``async def``, even when it only reads ``app.state``:
FastAPI runs a plain ``def`` dependency in a worker thread, a thread hop per
dependency per request, which the redirect profile showed as a measurable
share of the hot path (docs/performance.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.chassis.identity import Identity, identity_of
from services.link.clicks import ClickRecorder
from services.link.config import LinkSettings
from services.link.resolver import LinkResolver
from services.link.service import LinkService

__all__ = ["CallerDep", "ClicksDep", "LinkServiceDep", "ResolverDep", "SettingsDep"]


async def _service(request: Request) -> LinkService:
    service: LinkService = request.app.state.links
    return service


async def _resolver(request: Request) -> LinkResolver:
    resolver: LinkResolver = request.app.state.resolver
    return resolver


async def _clicks(request: Request) -> ClickRecorder:
    clicks: ClickRecorder = request.app.state.clicks
    return clicks


async def _settings(request: Request) -> LinkSettings:
    settings: LinkSettings = request.app.state.settings
    return settings


async def _caller(request: Request) -> Identity:
    return identity_of(request.scope)


LinkServiceDep = Annotated[LinkService, Depends(_service)]
ResolverDep = Annotated[LinkResolver, Depends(_resolver)]
ClicksDep = Annotated[ClickRecorder, Depends(_clicks)]
SettingsDep = Annotated[LinkSettings, Depends(_settings)]
CallerDep = Annotated[Identity, Depends(_caller)]
