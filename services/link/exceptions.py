"""Errors of the link domain, each with its HTTP status and code."""

from __future__ import annotations

from services.chassis.errors import ConflictError, GoneError, NotFoundError, UnavailableError

__all__ = ["AliasTaken", "CodeSpaceExhausted", "LinkExpired", "LinkNotFound"]


class LinkNotFound(NotFoundError):
    code = "link_not_found"
    title = "Link not found"


class LinkExpired(GoneError):
    code = "link_expired"
    title = "Link expired"


class AliasTaken(ConflictError):
    code = "alias_taken"
    title = "Alias taken"


class CodeSpaceExhausted(UnavailableError):
    code = "code_space_exhausted"
    title = "No free code found"
