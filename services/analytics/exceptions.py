"""Errors of the analytics domain, each with its HTTP status and code::

    NotFoundError            404
    └── LinkNotFound             link_not_found
    ForbiddenError           403
    └── NotLinkOwner             not_link_owner
    DomainError
    ├── InvalidRange         422 invalid_range
    └── RangeTooLong         422 range_too_long

An anonymous caller where a user is needed gets the chassis's own
``UnauthorizedError`` (``authentication_required``); malformed query
parameters get the chassis's ``validation_failed``.
"""

from __future__ import annotations

from services.chassis.errors import DomainError, ForbiddenError, NotFoundError

__all__ = ["InvalidRange", "LinkNotFound", "NotLinkOwner", "RangeTooLong"]


class LinkNotFound(NotFoundError):
    code = "link_not_found"
    title = "Link not found"


class NotLinkOwner(ForbiddenError):
    """403, not 404, as in the link service: a link's existence is public anyway."""

    code = "not_link_owner"
    title = "Not your link"


class InvalidRange(DomainError):
    status_code = 422
    code = "invalid_range"
    title = "Invalid time range"


class RangeTooLong(DomainError):
    status_code = 422
    code = "range_too_long"
    title = "Time range too long"
