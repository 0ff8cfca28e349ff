"""Prometheus metrics: the registry's ``/metrics`` route.

Metrics are module-level objects (the prometheus-client idiom: they register
once per process and cost a lock and an add when used).
"""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

__all__ = ["metrics_router"]


def metrics_router() -> APIRouter:
    """The ``/metrics`` route in Prometheus text format."""
    router = APIRouter(tags=["health"])

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
