"""URLs users give, read as browsers read them: the WHATWG URL Standard.

A link's target (the link service) and a webhook endpoint (the webhooks
service) are both read here. ada (``ada-url``, the parser Node.js uses)
parses; a URL is stored (and a target redirected to) as the ``href`` it
gives, exactly. What the standard refuses is refused, and what the project
refuses on top (a policy) is refused with its own code
(services/chassis/url_errors.py, docs/links-urls.md). ada only says *that*
a URL is invalid, so the reason is found by taking the authority apart as
the standard does and asking ada about the host alone; the URL is never
rebuilt by hand.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final
from urllib.parse import unquote_to_bytes

from ada_url import HostType, idna_to_ascii, idna_to_unicode, parse_url

from services.chassis.url_errors import (
    BlockedPort,
    CredentialsInUrl,
    ForbiddenHostCodePoint,
    InvalidHost,
    InvalidIpv4,
    InvalidIpv6,
    InvalidPort,
    InvalidUrl,
    MissingHost,
    OwnHost,
    UnsupportedScheme,
    UrlTooLong,
)

__all__ = [
    "MAX_URL_LENGTH",
    "URL_ERROR_CODES",
    "host_key",
    "normalize_url",
    "url_refusals",
]

MAX_URL_LENGTH: Final = 2048
ALLOWED_SCHEMES: Final = frozenset({"http", "https"})
# Every reason a target can be refused, for the API's description of its 422s.
_REFUSALS: Final[tuple[type[InvalidUrl], ...]] = (InvalidUrl, *InvalidUrl.__subclasses__())
URL_ERROR_CODES: Final = {error.code: (error.__doc__ or error.title).strip() for error in _REFUSALS}


# The Fetch Standard's "bad ports": a browser refuses to fetch them, so a link
# there could never be followed. Port 0 no connection can use at all.
BAD_PORTS: Final = frozenset(
    {0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95}
    | {101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161}
    | {179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563}
    | {587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060}
    | {5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080}
)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# Characters no domain may hold once mapped (the standard's "forbidden
# domain code points"): the forbidden host code points, C0 controls, % and DEL.
_FORBIDDEN_IN_DOMAIN = frozenset(" #/:<>?@[\\]^|%\x7f") | {chr(c) for c in range(0x20)}
_ATTRIBUTES: Final = ("href", "username", "password", "hostname", "port", "host_type")
_C0_AND_SPACE: Final = "".join(chr(c) for c in range(0x21))
_TAB_AND_NEWLINES: Final = dict.fromkeys((0x09, 0x0A, 0x0D))
_IPV4_NUMBER = re.compile(r"(0[xX][0-9A-Fa-f]*|[0-9]+)")


def normalize_url(url: str, *, own_hosts: frozenset[str] = frozenset()) -> str:
    """The URL's canonical ``href``, to store and redirect to; or an ``InvalidUrl``."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlTooLong(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    cleaned = _preprocess(url)
    scheme = _SCHEME.match(cleaned)
    if scheme is None:
        raise InvalidUrl("The URL must be absolute, starting with http:// or https://.")
    if scheme[1].lower() not in ALLOWED_SCHEMES:
        raise UnsupportedScheme("Only http and https URLs are accepted.")
    try:
        parts = parse_url(cleaned, attributes=_ATTRIBUTES)
    except ValueError:
        raise _why_refused(cleaned[scheme.end() :]) from None
    href, hostname = parts["href"], parts["hostname"]
    if parts["host_type"] == HostType.DEFAULT and (label := _bad_punycode(hostname)):
        raise InvalidHost(f"The host's label '{label}' is not valid Punycode (IDNA).")
    if parts["username"] or parts["password"]:
        raise CredentialsInUrl("URLs with a user name or password are not accepted.")
    if parts["port"] and int(parts["port"]) in BAD_PORTS:
        raise BlockedPort(f"Browsers refuse to open port {parts['port']}.")
    if len(href) > MAX_URL_LENGTH:
        raise UrlTooLong(f"The URL is longer than {MAX_URL_LENGTH} characters once parsed.")
    if host_key(href) in own_hosts:
        raise OwnHost("A short link cannot point at the shortener itself.")
    return href


def host_key(url: str) -> str:
    """``host:port`` of a URL as the standard parses it, the default port filled in."""
    parts = parse_url(url, attributes=("protocol", "hostname", "port"))
    port = parts["port"] or ("443" if parts["protocol"] == "https:" else "80")
    # "sho.rt." is the same name in DNS as "sho.rt".
    return f"{parts['hostname'].removesuffix('.')}:{port}"


def _preprocess(url: str) -> str:
    """What the parser reads: a lone surrogate made U+FFFD (as a browser's
    USVString does; UTF-8 has no room for one), leading and trailing C0
    controls and spaces stripped, tabs and newlines removed anywhere."""
    text = url.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.strip(_C0_AND_SPACE).translate(_TAB_AND_NEWLINES)


def _why_refused(rest: str) -> InvalidUrl:
    """The reason the parser refused an http(s) URL; ``rest`` follows the scheme.

    Only the authority can fail in an http(s) URL (path, query and fragment
    are percent-encoded, never refused), so it is split as the parser splits
    it: after the slashes, up to the first ``/ \\ ? #``; the host after the
    last ``@``; the port after the first ``:`` outside brackets.
    """
    authority = re.split(r"[/\\?#]", rest.lstrip("/\\"), maxsplit=1)[0]
    host_port = authority.rpartition("@")[2]
    if host_port.startswith("["):
        host, bracket, after = host_port.partition("]")
        host, port = host + bracket, after.removeprefix(":")
    else:
        host, _, port = host_port.partition(":")
    if not host:
        return MissingHost("The URL has no host.")
    if port and (not port.isascii() or not port.isdigit() or int(port) > 65535):
        return InvalidPort(f"The port '{port[:20]}' is not a number from 0 to 65535.")
    if _parses(f"http://{host}/"):
        return InvalidUrl("The URL is not valid.")
    return _host_problem(host)


def _host_problem(host: str) -> InvalidUrl:
    """Why a host the parser refuses is refused, in the standard's order."""
    shown = host[:100]
    if host.startswith("["):
        return InvalidIpv6(f"The host '{shown}' is not a valid IPv6 address.")
    try:
        decoded = unquote_to_bytes(host).decode()
    except UnicodeDecodeError:
        return InvalidHost(f"The host '{shown}' percent-encodes bytes that are not UTF-8.")
    # NFKC and case folding stand in for UTS 46's mapping (a fullwidth percent sign becomes %).
    mapped = unicodedata.normalize("NFKC", decoded).lower()
    if forbidden := sorted(set(mapped) & _FORBIDDEN_IN_DOMAIN):
        return ForbiddenHostCodePoint(
            f"The host '{shown}' holds characters no host may hold: {''.join(forbidden)!r}."
        )
    if _ends_in_a_number(mapped):
        return InvalidIpv4(f"The host '{shown}' ends in a number but is not an IPv4 address.")
    return InvalidHost(f"The host '{shown}' is not a valid domain name.")


def _ends_in_a_number(domain: str) -> bool:
    """The standard's "ends in a number": such a host must be an IPv4 address."""
    labels = domain.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    return bool(_IPV4_NUMBER.fullmatch(labels[-1]))


def _bad_punycode(hostname: str) -> str | None:
    """An ``xn--`` label that is not the Punycode of a valid label, if any.

    The standard refuses them (``http://a.b.c.xn--pokxncvks``); ada lets
    them through, so each is checked here: it must decode, and encode back
    to itself.
    """
    for label in hostname.split("."):
        if label.startswith("xn--"):
            decoded = idna_to_unicode(label)
            if decoded == label or idna_to_ascii(decoded).decode() != label:
                return label
    return None


def _parses(url: str) -> bool:
    try:
        parse_url(url, attributes=("href",))
    except ValueError:
        return False
    return True


def url_refusals(lead: str, *, without: frozenset[str] = frozenset()) -> str:
    """The text of a 422 in the OpenAPI document of an operation that takes a
    URL: ``lead`` (the operation's other refusals), then every reason a URL
    is refused but those ``without`` (codes the operation never raises)."""
    reasons = [
        f"- `{code}`: {text}" for code, text in URL_ERROR_CODES.items() if code not in without
    ]
    return "\n".join([lead, "", *reasons])
