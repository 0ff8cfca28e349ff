"""Errors of the link domain, each with its HTTP status and code.

A refused target URL is the chassis's ``InvalidUrl`` family (422, its
subclass naming the reason: services/chassis/url_errors.py,
docs/links-urls.md); ``InvalidLink`` (422 ``invalid_link``) is every other
refusal of a link's fields (alias, expiry, visit limit).
"""

from __future__ import annotations

from services.chassis.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    GoneError,
    NotFoundError,
    UnavailableError,
)

__all__ = [
    "AliasTaken",
    "CodeSpaceExhausted",
    "InvalidCursor",
    "InvalidLink",
    "LinkExpired",
    "LinkNotFound",
    "NotLinkOwner",
    "VisitLimitReached",
]


class InvalidLink(DomainError):
    status_code = 422
    code = "invalid_link"
    title = "Invalid link"


class InvalidCursor(DomainError):
    status_code = 422
    code = "invalid_cursor"
    title = "Invalid cursor"


class LinkNotFound(NotFoundError):
    code = "link_not_found"
    title = "Link not found"


class LinkExpired(GoneError):
    code = "link_expired"
    title = "Link expired"


class VisitLimitReached(GoneError):
    code = "visit_limit_reached"
    title = "Visit limit reached"


class AliasTaken(ConflictError):
    code = "alias_taken"
    title = "Alias taken"


class NotLinkOwner(ForbiddenError):
    """Someone else's link: 403, not 404, because a link's existence is
    public anyway (its redirect and metadata answer anyone); pretending it
    does not exist would hide nothing and confuse honest clients."""

    code = "not_link_owner"
    title = "Not your link"


class CodeSpaceExhausted(UnavailableError):
    code = "code_space_exhausted"
    title = "No free code found"
