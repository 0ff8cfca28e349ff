"""HTTP endpoints of the link service: thin, no SQL, no rules."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from starlette.responses import Response

from services.chassis.errors import PROBLEM_JSON
from services.chassis.http import etag_matches
from services.chassis.urls import url_refusals
from services.link.cache import CachedLink
from services.link.config import LinkSettings
from services.link.dependencies import (
    CallerDep,
    ClicksDep,
    LinkServiceDep,
    ResolverDep,
    SettingsDep,
)
from services.link.models import Link
from services.link.qr import MAX_SIZE, MIN_SIZE, QrFormat, render
from services.link.schemas import LinkCreate, LinkOut, LinkPage, LinkUpdate
from services.link.service import usage_visible

__all__ = ["REDIRECT_TEMPLATE", "follow", "redirect_response", "router"]

router = APIRouter()

_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}
_AUTH: dict[int | str, dict[str, Any]] = {401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM}
_URL_REFUSALS = url_refusals(
    "Refused. The problem's `code` is `validation_failed` (a field's type or size),\n"
    "`invalid_link` (alias, expiry, limit), or for a refused target URL the reason:"
)
_URL_PROBLEM: dict[str, Any] = {**_PROBLEM, "description": _URL_REFUSALS}


def _short_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/{code}"


def _out(link: Link, base_url: str, *, usage: bool = True) -> LinkOut:
    return LinkOut.model_validate(
        {
            "code": link.code,
            "short_url": _short_url(base_url, link.code),
            "url": link.url,
            "created_at": link.created_at,
            "expires_at": link.expires_at,
            "redirect_type": link.redirect_type,
            "max_visits": link.max_visits,
            "visits": link.visits if usage else None,
        }
    )


@router.post(
    "/api/v1/links",
    status_code=status.HTTP_201_CREATED,
    tags=["links"],
    responses={400: _PROBLEM, 401: _PROBLEM, 409: _PROBLEM, 413: _PROBLEM, 422: _URL_PROBLEM},
)
async def create_link(
    data: LinkCreate, caller: CallerDep, links: LinkServiceDep, settings: SettingsDep
) -> LinkOut:
    """Shorten a URL, under a random code or the given alias; owned by the caller if signed in."""
    return _out(await links.create(data, caller), settings.public_base_url)


@router.get("/api/v1/links", tags=["links"], responses={401: _PROBLEM, 422: _PROBLEM})
async def list_links(
    caller: CallerDep,
    links: LinkServiceDep,
    settings: SettingsDep,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> LinkPage:
    """The caller's links, newest first, a page at a time."""
    page, next_cursor = await links.list_mine(caller, cursor, limit)
    items = [_out(link, settings.public_base_url) for link in page]
    return LinkPage(items=items, next_cursor=next_cursor)


@router.get("/api/v1/links/{code}", tags=["links"], responses={404: _PROBLEM})
async def get_link(
    code: str, caller: CallerDep, links: LinkServiceDep, settings: SettingsDep
) -> LinkOut:
    """A link's metadata, expired or not (its visit count for its owner only)."""
    link = await links.get(code)
    return _out(link, settings.public_base_url, usage=usage_visible(link, caller))


# A code is never reused, so its image never changes; a day bounds how long a
# deleted link's image lingers in caches.
_QR_CACHE = "public, max-age=86400"
_QR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/png": {}, "image/svg+xml": {}},
        "description": "The image, with ETag and Cache-Control",
    },
    304: {"description": "Not modified (If-None-Match matched the ETag)"},
    404: _PROBLEM,
    422: _PROBLEM,
}


@router.get(
    "/api/v1/links/{code}/qr", tags=["links"], response_class=Response, responses=_QR_RESPONSES
)
async def link_qr(
    code: str,
    request: Request,
    links: LinkServiceDep,
    settings: SettingsDep,
    *,
    kind: Annotated[QrFormat, Query(alias="format")] = "png",
    size: Annotated[int, Query(ge=MIN_SIZE, le=MAX_SIZE, description="Width in pixels")] = 256,
) -> Response:
    """A QR code of the short link, PNG or SVG, at most ``size`` pixels wide; cacheable."""
    link = await links.get(code)
    image = render(_short_url(settings.public_base_url, link.code), kind, size)
    headers = {"cache-control": _QR_CACHE, "etag": image.etag}
    if etag_matches(request.headers.get("if-none-match"), image.etag):
        return Response(status_code=304, headers=headers)
    return Response(await image.draw_in_thread(), media_type=image.media_type, headers=headers)


@router.patch("/api/v1/links/{code}", tags=["links"], responses={**_AUTH, 422: _URL_PROBLEM})
async def update_link(
    code: str, data: LinkUpdate, caller: CallerDep, links: LinkServiceDep, settings: SettingsDep
) -> LinkOut:
    """Change a link's target, expiry, redirect type or visit limit (owner only)."""
    return _out(await links.update(code, data, caller), settings.public_base_url)


@router.delete(
    "/api/v1/links/{code}",
    tags=["links"],
    status_code=204,
    responses=_AUTH,
    response_class=Response,
)
async def delete_link(code: str, caller: CallerDep, links: LinkServiceDep) -> Response:
    """Delete a link (owner only); its code is never reused."""
    await links.delete(code, caller)
    return Response(status_code=204)


# The redirect's route template: its RED metrics label and span name.
REDIRECT_TEMPLATE = "/{code}"


@router.get(
    REDIRECT_TEMPLATE,
    tags=["redirect"],
    status_code=302,
    response_class=Response,
    responses={
        301: {"description": "Permanent redirect"},
        302: {"description": "Temporary redirect"},
        307: {"description": "Temporary redirect, method kept"},
        308: {"description": "Permanent redirect, method kept"},
        404: _PROBLEM,
        410: {**_PROBLEM, "description": "Expired, or visit limit reached"},
    },
)
async def follow(
    code: str, request: Request, resolver: ResolverDep, clicks: ClicksDep, settings: SettingsDep
) -> Response:
    """Redirect to the link's target and record the click (the hot path)."""
    link = await resolver.resolve(code)
    clicks.record(request, code)
    return redirect_response(link, settings)


def redirect_response(link: CachedLink, settings: LinkSettings) -> Response:
    """The redirect to ``link``: its status, and how long it may be cached or replayed
    (services/chassis/redirects.py: the gateway answers from the read model alike)."""
    redirect = link.redirect(settings.permanent_redirect_max_age_seconds)
    return Response(status_code=redirect.status, headers=dict(redirect.headers(time.time())))
