"""The route table: which upstream serves which public path.

This is the one place a new service is exposed. Entries are matched in
order, so a more specific prefix goes before a shorter one (later:
``/api/v1/links/{code}/stats`` to analytics before ``/api/v1/links`` to
link). A single path segment that looks like a code is a redirect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["GATEWAY_PATHS", "REDIRECT_TEMPLATE", "ROUTES", "Route", "match", "match_route"]


@dataclass(frozen=True, slots=True)
class Route:
    """Paths under ``prefix`` (matching ``pattern`` if given) go to ``upstream``."""

    prefix: str
    upstream: str
    pattern: re.Pattern[str] | None = None
    # The bounded label for metrics and logs (never the raw path).
    template: str = ""

    @property
    def label(self) -> str:
        return self.template or self.prefix + "/*"

    def matches(self, path: str) -> bool:
        if self.pattern is not None:
            return self.pattern.fullmatch(path) is not None
        return path == self.prefix or path.startswith(self.prefix + "/")


REDIRECT_TEMPLATE: Final = "/{code}"
# Must agree with services.link.codes.CODE_PATTERN (checked by a test).
_CODE_PATH = re.compile(r"/[A-Za-z0-9_-]{1,64}")

ROUTES: Final = (
    Route(
        "/api/v1/links",
        "analytics",
        pattern=re.compile(r"/api/v1/links/[^/]+/stats"),
        template="/api/v1/links/{code}/stats",
    ),
    Route("/api/v1/stats", "analytics"),
    Route("/api/v1/links", "link"),
    Route("/api/v1/auth", "user"),
    Route("/api/v1/users", "user"),
    Route("/api/v1/api-keys", "user"),
    Route("/api/v1/webhooks", "webhooks"),
    Route("/", "link", pattern=_CODE_PATH, template=REDIRECT_TEMPLATE),
)

# Served by the gateway itself, never proxied.
GATEWAY_PATHS: Final = frozenset(
    {
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
    }
)


# The routes a path of one segment (``/x``: every redirect) can match, in
# order: a prefix of more segments never matches it.
_ONE_SEGMENT: Final = tuple(r for r in ROUTES if r.prefix.count("/") <= 1)


def match_route(path: str) -> Route | None:
    """The route serving ``path``, or None when the gateway answers it itself."""
    if path in GATEWAY_PATHS:
        return None
    for route in _ONE_SEGMENT if path.find("/", 1) == -1 else ROUTES:
        if route.matches(path):
            return route
    return None


def match(path: str) -> str | None:
    """The upstream for ``path``, or None when the gateway answers it itself."""
    route = match_route(path)
    return route.upstream if route is not None else None
