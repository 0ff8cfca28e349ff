"""The page and its assets, served by the gateway itself (never proxied).

The page talks only to the gateway's public API, from the same origin, so it
needs no CORS and its Content-Security-Policy can allow nothing but 'self':
no inline script or style, no other host (the QR images are the API's).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.web.assets import Bundle, load_bundle
from services.chassis.errors import NotFoundError

__all__ = ["PAGE_HEADERS", "AssetNotFound", "web_router"]

PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "referrer-policy": "no-referrer",
}


class AssetNotFound(NotFoundError):
    code = "asset_not_found"
    title = "No such asset"


def web_router(bundle: Bundle | None = None) -> APIRouter:
    """Routes for ``/`` and ``/assets/{name}``; the files are read once, here."""
    files = bundle or load_bundle(headers=PAGE_HEADERS)
    router = APIRouter(include_in_schema=False)

    # HEAD too: uptime checks and link previews ask with it (the server drops the body).
    @router.api_route("/", methods=["GET", "HEAD"])
    async def page(request: Request) -> Response:
        return files.page.respond(request)

    @router.api_route("/assets/{name}", methods=["GET", "HEAD"])
    async def asset(name: str, request: Request) -> Response:
        found = files.assets.get(name)
        if found is None:
            # An old fingerprint too: the page that named it is gone with it.
            raise AssetNotFound(f"No asset named '{name[:100]}'.")
        return found.respond(request)

    return router
