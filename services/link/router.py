"""HTTP endpoints of the link service: thin, no SQL, no rules."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, status
from starlette.responses import Response

from services.chassis.errors import PROBLEM_JSON
from services.link.dependencies import ClicksDep, LinkServiceDep, SettingsDep
from services.link.models import Link
from services.link.schemas import LinkCreate, LinkOut

__all__ = ["router"]

router = APIRouter()

_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}
_PERMANENT = frozenset({301, 308})


def _out(link: Link, base_url: str) -> LinkOut:
    return LinkOut.model_validate(
        {
            "code": link.code,
            "short_url": f"{base_url.rstrip('/')}/{link.code}",
            "url": link.url,
            "created_at": link.created_at,
            "expires_at": link.expires_at,
            "redirect_type": link.redirect_type,
        }
    )


@router.post(
    "/api/v1/links",
    status_code=status.HTTP_201_CREATED,
    tags=["links"],
    responses={409: _PROBLEM, 413: _PROBLEM, 422: _PROBLEM, 400: _PROBLEM},
)
async def create_link(data: LinkCreate, links: LinkServiceDep, settings: SettingsDep) -> LinkOut:
    """Shorten a URL, under a random code or the given alias."""
    return _out(await links.create(data), settings.public_base_url)


@router.get("/api/v1/links/{code}", tags=["links"], responses={404: _PROBLEM})
async def get_link(code: str, links: LinkServiceDep, settings: SettingsDep) -> LinkOut:
    """A link's metadata, expired or not."""
    return _out(await links.get(code), settings.public_base_url)


@router.get(
    "/{code}",
    tags=["redirect"],
    status_code=302,
    response_class=Response,
    responses={
        301: {"description": "Permanent redirect"},
        302: {"description": "Temporary redirect"},
        307: {"description": "Temporary redirect, method kept"},
        308: {"description": "Permanent redirect, method kept"},
        404: _PROBLEM,
        410: _PROBLEM,
    },
)
async def follow(
    code: str, request: Request, links: LinkServiceDep, clicks: ClicksDep, settings: SettingsDep
) -> Response:
    """Redirect to the link's target and record the click (the hot path)."""
    link = await links.resolve(code)
    clicks.record(request, code)
    if link.redirect_type in _PERMANENT:
        max_age = settings.permanent_redirect_max_age_seconds
        if link.expires_at is not None:
            max_age = max(0, min(max_age, int(link.expires_at - time.time())))
        cache_control = f"public, max-age={max_age}"
    else:
        # Every visit of a temporary redirect must reach us to be counted.
        cache_control = "private, no-store"
    return Response(
        status_code=link.redirect_type,
        headers={"location": link.url, "cache-control": cache_control},
    )
