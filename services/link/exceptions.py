"""Errors of the link domain, each with its HTTP status and code.

A refused target URL is an ``InvalidUrl``, whose subclass names the reason
(docs/links-urls.md): what the URL Standard refuses, then what this
service refuses on top of it::

    InvalidLink                  422 invalid_link
    └── InvalidUrl               422 invalid_url
        ├── MissingHost              missing_host
        ├── InvalidHost              invalid_host
        ├── ForbiddenHostCodePoint   forbidden_host_code_point
        ├── InvalidIpv4              invalid_ipv4
        ├── InvalidIpv6              invalid_ipv6
        ├── InvalidPort              invalid_port
        ├── UnsupportedScheme        unsupported_scheme  (policy)
        ├── CredentialsInUrl         credentials_in_url  (policy)
        ├── BlockedPort              blocked_port        (policy)
        ├── OwnHost                  own_host            (policy)
        └── UrlTooLong               url_too_long        (policy)
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
    "BlockedPort",
    "CodeSpaceExhausted",
    "CredentialsInUrl",
    "ForbiddenHostCodePoint",
    "InvalidCursor",
    "InvalidHost",
    "InvalidIpv4",
    "InvalidIpv6",
    "InvalidLink",
    "InvalidPort",
    "InvalidUrl",
    "LinkExpired",
    "LinkNotFound",
    "MissingHost",
    "NotLinkOwner",
    "OwnHost",
    "UnsupportedScheme",
    "UrlTooLong",
    "VisitLimitReached",
]


class InvalidLink(DomainError):
    status_code = 422
    code = "invalid_link"
    title = "Invalid link"


class InvalidUrl(InvalidLink):
    """The URL Standard does not parse it as an absolute URL."""

    code = "invalid_url"
    title = "Invalid URL"


class MissingHost(InvalidUrl):
    """An http(s) URL without a host (`http://`, `http://:80/`)."""

    code = "missing_host"
    title = "URL without a host"


class InvalidHost(InvalidUrl):
    """The host is not a valid domain name (IDNA/UTS 46), e.g. `xn--` that is not Punycode."""

    code = "invalid_host"
    title = "Invalid host"


class ForbiddenHostCodePoint(InvalidUrl):
    """The host holds a character no host may hold (space, `<`, `^`, `%`, a control...)."""

    code = "forbidden_host_code_point"
    title = "Forbidden character in host"


class InvalidIpv4(InvalidUrl):
    """The host ends in a number, so it must be an IPv4 address, and is not one."""

    code = "invalid_ipv4"
    title = "Invalid IPv4 address"


class InvalidIpv6(InvalidUrl):
    """The host is in brackets, so it must be an IPv6 address, and is not one."""

    code = "invalid_ipv6"
    title = "Invalid IPv6 address"


class InvalidPort(InvalidUrl):
    """The port is not a number from 0 to 65535."""

    code = "invalid_port"
    title = "Invalid port"


class UnsupportedScheme(InvalidUrl):
    """Policy: only http and https targets (no `javascript:`, `data:`, `file:`...)."""

    code = "unsupported_scheme"
    title = "Unsupported scheme"


class CredentialsInUrl(InvalidUrl):
    """Policy: no user name or password (`https://bank.com@evil.com` spoofs)."""

    code = "credentials_in_url"
    title = "Credentials in URL"


class BlockedPort(InvalidUrl):
    """Policy: a port browsers refuse to fetch (the Fetch Standard's bad ports)."""

    code = "blocked_port"
    title = "Blocked port"


class OwnHost(InvalidUrl):
    """Policy: a short link cannot point at the shortener itself (a redirect loop)."""

    code = "own_host"
    title = "Link to the shortener"


class UrlTooLong(InvalidUrl):
    """Policy: longer than 2048 characters, as given or once parsed."""

    code = "url_too_long"
    title = "URL too long"


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
