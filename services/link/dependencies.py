"""The link service's dependency vocabulary."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.chassis.identity import Identity, identity_of
from services.link.clicks import ClickRecorder
from services.link.config import LinkSettings
from services.link.resolver import LinkResolver
from services.link.service import LinkService

__all__ = ["CallerDep", "ClicksDep", "LinkServiceDep", "ResolverDep", "SettingsDep"]


def _service(request: Request) -> LinkService:
    service: LinkService = request.app.state.links
    return service


def _resolver(request: Request) -> LinkResolver:
    resolver: LinkResolver = request.app.state.resolver
    return resolver


def _clicks(request: Request) -> ClickRecorder:
    clicks: ClickRecorder = request.app.state.clicks
    return clicks


def _settings(request: Request) -> LinkSettings:
    settings: LinkSettings = request.app.state.settings
    return settings


def _caller(request: Request) -> Identity:
    return identity_of(request.scope)


LinkServiceDep = Annotated[LinkService, Depends(_service)]
ResolverDep = Annotated[LinkResolver, Depends(_resolver)]
ClicksDep = Annotated[ClickRecorder, Depends(_clicks)]
SettingsDep = Annotated[LinkSettings, Depends(_settings)]
CallerDep = Annotated[Identity, Depends(_caller)]
