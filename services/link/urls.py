"""Target URLs: only web addresses a browser can safely follow, kept in ASCII.

A target ends up in a ``Location`` header, which is ASCII; so a host is
stored in its IDNA form and non-ASCII characters elsewhere percent-encoded,
the way a browser would send them.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

__all__ = ["MAX_URL_LENGTH", "InvalidUrl", "host_key", "normalize_url"]

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})
# Everything printable in ASCII is left as it is; only the rest is encoded.
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


class InvalidUrl(ValueError):
    """The reason a URL cannot be a target, in words for the client."""


def host_key(url: str) -> str:
    """``host:port`` of a URL, with the scheme's default port filled in."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    return f"{(parts.hostname or '').rstrip('.').lower()}:{port}"


def normalize_url(url: str, *, own_hosts: frozenset[str] = frozenset()) -> str:
    """The URL as it will be stored and redirected to, or ``InvalidUrl``.

    Rejects other schemes (``javascript:``, ``data:``, ``file:``...), URLs
    without a host, whitespace and control characters (header injection,
    spoofed displays), embedded credentials (``https://bank.com@evil.com``),
    and links to the shortener itself (redirect loops).
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidUrl(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in url):
        raise InvalidUrl("The URL contains whitespace or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidUrl("The URL is malformed.") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise InvalidUrl("Only http and https URLs can be shortened.")
    host = (parts.hostname or "").rstrip(".")
    if not host or "\\" in parts.netloc:
        raise InvalidUrl("The URL has no valid host.")
    if parts.username is not None or parts.password is not None:
        raise InvalidUrl("URLs with credentials cannot be shortened.")
    if port == 0:
        raise InvalidUrl("The URL's port is invalid.")
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise InvalidUrl("The URL's host is not a valid domain name.") from None
    netloc = ascii_host if port is None else f"{ascii_host}:{port}"
    if parts.netloc.startswith("["):  # IPv6 literal: keep its brackets
        netloc = parts.netloc
    normalized = urlunsplit(
        (
            parts.scheme.lower(),
            netloc,
            quote(parts.path, safe=_SAFE),
            quote(parts.query, safe=_SAFE),
            quote(parts.fragment, safe=_SAFE),
        )
    )
    if len(normalized) > MAX_URL_LENGTH:
        raise InvalidUrl(f"The URL is longer than {MAX_URL_LENGTH} characters once encoded.")
    if host_key(normalized) in own_hosts:
        raise InvalidUrl("A short link cannot point at the shortener itself.")
    return normalized
