"""The link service's dependency vocabulary."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.link.clicks import ClickRecorder
from services.link.config import LinkSettings
from services.link.service import LinkService

__all__ = ["ClicksDep", "LinkServiceDep", "SettingsDep"]


def _service(request: Request) -> LinkService:
    service: LinkService = request.app.state.links
    return service


def _clicks(request: Request) -> ClickRecorder:
    clicks: ClickRecorder = request.app.state.clicks
    return clicks


def _settings(request: Request) -> LinkSettings:
    settings: LinkSettings = request.app.state.settings
    return settings


LinkServiceDep = Annotated[LinkService, Depends(_service)]
ClicksDep = Annotated[ClickRecorder, Depends(_clicks)]
SettingsDep = Annotated[LinkSettings, Depends(_settings)]
