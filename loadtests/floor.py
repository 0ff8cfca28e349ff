"""The floor: the cheapest redirect a Python service can serve on this machine.

A bare FastAPI app on uvicorn (one worker, uvloop, httptools, no access log)
that answers ``GET /{code}`` with a 302 from a dict. ``make bench`` starts it
beside the real system and reports every scenario as a multiple of it, since
whole runs drift by up to ±25% between machines and hours while ratios
measured back to back do not (../shared/PERFORMANCE.md).

Two barer shapes, chained, make the two-hop floor: ``--redis URL`` looks
the code up in Redis (redis-py, one ``GET``), ``--upstream URL`` asks
another floor for the answer (aiohttp) and passes it on, each a plain ASGI
callable on the same uvicorn (no framework: the gateway's and the link
service's redirect routes have none either). Client → ``--upstream`` →
``--redis`` → Redis is the proxied redirect's path (gateway → link service
→ Redis) with nothing of the system on it: no middleware, no access log,
no metrics, no click, no batching.

    python -m loadtests.floor --port 9000
    redis-cli -n 15 set floor https://example.com/
    python -m loadtests.floor --port 9001 --redis redis://127.0.0.1:6379/15
    python -m loadtests.floor --port 9002 --upstream http://127.0.0.1:9001
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Final

import aiohttp
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["FLOOR_CODE", "FLOOR_TARGET", "ProxyFloor", "RedisFloor", "create_app"]

FLOOR_CODE: Final = "floor"
FLOOR_TARGET: Final = "https://example.com/"
_LINKS: Final = {FLOOR_CODE: FLOOR_TARGET}


def _redirect(url: str | None) -> Response:
    if url is None:
        return Response(status_code=404)
    return RedirectResponse(url, status_code=302)


def create_app(links: Mapping[str, str]) -> FastAPI:
    """An app with one route and nothing else: no middleware, no dependencies."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/{code}")
    async def follow(code: str) -> Response:
        return _redirect(links.get(code))

    return app


class RedisFloor:
    """The floor's redirect with its dict in Redis: one ``GET`` per request,
    as a bare ASGI callable (no framework, no lifespan)."""

    def __init__(self, redis_url: str) -> None:
        self.redis = aioredis.Redis.from_url(redis_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        url = await self.redis.get(scope["path"][1:])
        await _answer(send, url.decode() if isinstance(url, bytes) else url)


class ProxyFloor:
    """A bare ASGI callable passing on another floor's answers (aiohttp).

    The answer's body (empty, chunked) is read to its end: aiohttp closes a
    connection whose response was released unread, and the front then
    opened a new one for about one request in four (strace on the back).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.session is None:  # made in the server's loop, on the first request
            self.session = aiohttp.ClientSession(self.upstream)
        async with self.session.get(scope["path"], allow_redirects=False) as answer:
            location = answer.headers.get("Location")
            await answer.read()
        await _answer(send, location)


async def _answer(send: Send, location: str | None) -> None:
    if location is None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
    else:
        headers = [(b"location", location.encode("latin-1"))]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def serve(app: ASGIApp, port: int) -> None:
    uvicorn.run(
        app,
        lifespan="auto" if isinstance(app, FastAPI) else "off",
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
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--redis", help="look codes up in this Redis (redis://host:port/db)")
    shape.add_argument("--upstream", help="pass on this floor's answers (http://host:port)")
    args = parser.parse_args()
    if args.redis:
        serve(RedisFloor(args.redis), args.port)
    elif args.upstream:
        serve(ProxyFloor(args.upstream), args.port)
    else:
        serve(create_app(_LINKS), args.port)


if __name__ == "__main__":
    main()
