"""Liveness and readiness, the same in every process.

``/healthz`` says the process is alive (the event loop answers). ``/readyz``
says it can do its job: every *critical* dependency answers. Dependencies
whose loss the process survives in a degraded mode (a cache, the broker
behind a buffer) are reported but do not make it unready: taking every
replica out of rotation because Redis blinked would turn a slowdown into an
outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

__all__ = ["UNSIGNED_PATHS", "DependencyCheck", "health_router"]

# Probes and scrapes come from the platform, not through the gateway.
UNSIGNED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"})


@dataclass(frozen=True, slots=True)
class DependencyCheck:
    """A probe of one dependency: ``probe`` raises (or times out) when it is down."""

    name: str
    probe: Callable[[], Awaitable[object]]
    critical: bool = True
    timeout_seconds: float = 1.0

    async def run(self) -> str:
        try:
            await asyncio.wait_for(self.probe(), self.timeout_seconds)
        except Exception:
            return "down"
        return "ok"


class Readiness(BaseModel):
    """What ``/readyz`` answers, ready (200) or not (503)."""

    status: Literal["ready", "degraded", "unready", "draining"]
    checks: dict[str, Literal["ok", "down"]] = Field(description="Each dependency probed.")


def health_router() -> APIRouter:
    """Routes ``/healthz`` and ``/readyz``; checks come from ``app.state.health_checks``."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> JSONResponse:
        """The process is alive."""
        return JSONResponse({"status": "ok"})

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready, or draining"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        """Every critical dependency answers (503 otherwise); others are reported."""
        checks: list[DependencyCheck] = getattr(request.app.state, "health_checks", [])
        if getattr(request.app.state, "draining", False):
            return JSONResponse({"status": "draining", "checks": {}}, status_code=503)
        results = await asyncio.gather(*(check.run() for check in checks))
        report = dict(zip((c.name for c in checks), results, strict=True))
        ready = all(r == "ok" for c, r in zip(checks, results, strict=True) if c.critical)
        degraded = any(r != "ok" for r in results)
        status = "degraded" if ready and degraded else "ready" if ready else "unready"
        return JSONResponse({"status": status, "checks": report}, status_code=200 if ready else 503)

    return router
