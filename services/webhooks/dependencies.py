"""The webhooks service's dependency vocabulary::

WebhookServiceDep  the service of this process
CurrentUser        the id of an authenticated user, 401 otherwise (services.chassis)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.chassis.dependencies import CurrentUser, from_state
from services.webhooks.service import WebhookService

__all__ = ["CurrentUser", "WebhookServiceDep"]

WebhookServiceDep = Annotated[WebhookService, Depends(from_state("webhooks"))]
