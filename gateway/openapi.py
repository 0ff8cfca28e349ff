"""One OpenAPI document for the public API, merged from the services' own.

Each service documents its endpoints; the gateway publishes those it routes
(and its own), so ``/docs`` on the gateway is the whole public API and stays
true as services change. An upstream that is down is left out until it
answers again.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any

import httpx

from gateway.proxy import Upstream
from gateway.routes import match
from services.chassis.openapi import problem_response_doc

__all__ = ["OpenApiMerger"]

log = logging.getLogger(__name__)


class OpenApiMerger:
    def __init__(
        self, client: httpx.AsyncClient, upstreams: dict[str, Upstream], ttl_seconds: float = 30.0
    ) -> None:
        self.client = client
        self.upstreams = upstreams
        self.ttl = ttl_seconds
        self._cached: dict[str, Any] | None = None
        self._at = 0.0

    async def document(self, own: dict[str, Any]) -> dict[str, Any]:
        """The merged document (``own`` is the gateway's), cached for ``ttl`` seconds."""
        if self._cached is not None and time.monotonic() - self._at < self.ttl:
            return self._cached
        docs = await asyncio.gather(*(self._fetch(u) for u in self.upstreams.values()))
        merged = {**own, "paths": dict(own.get("paths", {}))}
        # The services' models and the credentials they name (securitySchemes).
        components: dict[str, dict[str, Any]] = {
            kind: dict(own.get("components", {}).get(kind, {}))
            for kind in ("schemas", "securitySchemes")
        }
        complete = True
        for upstream, doc in zip(self.upstreams.values(), docs, strict=True):
            if doc is None:
                complete = False
                continue
            for path, item in doc.get("paths", {}).items():
                if match(_example(path)) == upstream.name:
                    merged["paths"][path] = _with_edge_responses(item)
            for kind, found in components.items():
                found.update(doc.get("components", {}).get(kind, {}))
        merged["components"] = {
            **own.get("components", {}),
            **components,
            "headers": _RATE_LIMIT_HEADERS,
        }
        if complete:
            self._cached, self._at = merged, time.monotonic()
        return merged

    async def _fetch(self, upstream: Upstream) -> dict[str, Any] | None:
        try:
            response = await self.client.get(f"{upstream.base_url}/openapi.json", timeout=2.0)
            response.raise_for_status()
            doc: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning(
                "openapi of upstream unavailable",
                extra={"upstream": upstream.name, "error": repr(exc)},
            )
            return None
        return doc


# What the gateway itself may answer to any proxied request, before or
# instead of the service: bad credentials, limits, an upstream that is away.
_EDGE_RESPONSES = {
    "401": "Credentials were given and did not verify",
    "429": "Rate limited; see Retry-After and RateLimit-*",
    "503": "The upstream or a dependency of the edge is unavailable",
    "504": "The upstream did not answer in time",
}


def _header(description: str, *, required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": {"type": "integer"}}


# gateway/ratelimit.py: every answer under a limit says where it stands, a
# 429 says when to come back. Defined once, referred to by every 429.
_RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": _header("Requests allowed in the window"),
    "RateLimit-Remaining": _header("Requests left in the window"),
    "RateLimit-Reset": _header("Seconds until the window resets"),
    "Retry-After": _header("Seconds to wait before retrying", required=True),
}
_RATE_LIMITED_HEADERS = {
    name: {"$ref": f"#/components/headers/{name}"} for name in _RATE_LIMIT_HEADERS
}


def _with_edge_responses(item: dict[str, Any]) -> dict[str, Any]:
    item = copy.deepcopy(item)
    for operation in item.values():
        responses = operation.setdefault("responses", {})
        extra = dict(_EDGE_RESPONSES)
        if "requestBody" in operation:
            extra["413"] = "The body is larger than the gateway accepts"
        for status, description in extra.items():
            responses.setdefault(status, problem_response_doc(description))
        responses["429"]["headers"] = _RATE_LIMITED_HEADERS
    return item


def _example(template: str) -> str:
    """A concrete path for a template, to ask the route table who serves it."""
    return template.replace("{", "").replace("}", "")
