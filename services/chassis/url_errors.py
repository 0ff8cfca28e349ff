"""Why a URL a user gives is refused, each with its code (422).

Every service that takes a URL from a user (a link's target, a webhook
endpoint) refuses it with these: what the URL Standard refuses, then what
the project refuses on top of it (docs/links-urls.md)::

    InvalidUrl                   422 invalid_url
    ├── MissingHost                  missing_host
    ├── InvalidHost                  invalid_host
    ├── ForbiddenHostCodePoint       forbidden_host_code_point
    ├── InvalidIpv4                  invalid_ipv4
    ├── InvalidIpv6                  invalid_ipv6
    ├── InvalidPort                  invalid_port
    ├── UnsupportedScheme            unsupported_scheme  (policy)
    ├── CredentialsInUrl             credentials_in_url  (policy)
    ├── BlockedPort                  blocked_port        (policy)
    ├── OwnHost                      own_host            (policy)
    └── UrlTooLong                   url_too_long        (policy)
"""

from __future__ import annotations

from services.chassis.errors import DomainError

__all__ = [
    "BlockedPort",
    "CredentialsInUrl",
    "ForbiddenHostCodePoint",
    "InvalidHost",
    "InvalidIpv4",
    "InvalidIpv6",
    "InvalidPort",
    "InvalidUrl",
    "MissingHost",
    "OwnHost",
    "UnsupportedScheme",
    "UrlTooLong",
]


class InvalidUrl(DomainError):
    """The URL Standard does not parse it as an absolute URL."""

    status_code = 422
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
