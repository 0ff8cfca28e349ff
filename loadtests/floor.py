"""The floor: the cheapest redirect a Python service can serve on this machine.

A bare FastAPI app on uvicorn (one worker, uvloop, httptools, no access log)
that answers ``GET /{code}`` with a 302 from a dict. ``make bench`` starts it
beside the real system and reports every scenario as a multiple of it, since
whole runs drift by up to ±25% between machines and hours while ratios
measured back to back do not (../shared/PERFORMANCE.md).

    python -m loadtests.floor --port 9000
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Final

import uvicorn
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response

__all__ = ["FLOOR_CODE", "create_app", "serve"]

FLOOR_CODE: Final = "floor"
_LINKS: Final = {FLOOR_CODE: "https://example.com/"}


def create_app(links: Mapping[str, str]) -> FastAPI:
    """An app with one route and nothing else: no middleware, no dependencies."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/{code}")
    async def follow(code: str) -> Response:
        url = links.get(code)
        if url is None:
            return Response(status_code=404)
        return RedirectResponse(url, status_code=302)

    return app


def serve(port: int) -> None:
    uvicorn.run(
        create_app(_LINKS),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
