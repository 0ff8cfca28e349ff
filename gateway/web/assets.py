"""The web page's files, prepared once at start the way a CDN would serve them.

Every file in ``static/`` except the page gets a fingerprinted name, its
content hash (``app.css`` -> ``app.3f2a9c1b0d4e.css``), so it can be cached
for a year and never revalidated: a new version is a new name. The page
(``index.html``) names its assets through ``{{ app.css }}`` placeholders,
replaced here by those names; the page itself must be revalidated on every
load (``no-cache`` with an ETag: a 304 costs a round trip, no body).

Each text file is gzipped here too, once, at the highest level (nothing is
compressed per request). A client that does not accept gzip gets the plain
bytes; ``Vary: Accept-Encoding`` tells caches in front that the two differ.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from services.chassis.http import etag_matches

__all__ = [
    "IMMUTABLE",
    "NO_CACHE",
    "STATIC_DIR",
    "Asset",
    "Bundle",
    "accepts_gzip",
    "load_bundle",
]

STATIC_DIR: Final = Path(__file__).parent / "static"
PAGE: Final = "index.html"
ASSET_PREFIX: Final = "/assets/"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
# Cached, but asked about every time: the page names the current assets.
NO_CACHE: Final = "no-cache"
_MEDIA_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_COMPRESSIBLE: Final = frozenset({".html", ".css", ".js", ".svg"})
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([\w.-]+)\s*\}\}")


@dataclass(frozen=True, slots=True)
class Asset:
    """One file as served: its bytes, gzipped bytes when smaller, type and validator."""

    body: bytes
    media_type: str
    digest: str
    gzipped: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, body: bytes, suffix: str, headers: Mapping[str, str]) -> Asset:
        digest = hashlib.sha256(body).hexdigest()[:12]
        packed = None
        if suffix in _COMPRESSIBLE:
            # mtime=0: the same file always gives the same bytes (and ETag).
            candidate = gzip.compress(body, compresslevel=9, mtime=0)
            packed = candidate if len(candidate) < len(body) else None
        return cls(body, _MEDIA_TYPES[suffix], digest, packed, headers)

    def respond(self, request: Request) -> Response:
        """200 with the best encoding the client takes, or 304 if it holds either one."""
        plain_tag, gzip_tag = f'"{self.digest}"', f'"{self.digest}-gz"'
        packed = self.gzipped if accepts_gzip(request.headers.get("accept-encoding")) else None
        headers = {**self.headers, "vary": "Accept-Encoding", "x-content-type-options": "nosniff"}
        headers["etag"] = plain_tag if packed is None else gzip_tag
        # Both encodings hold the same content: a client holding either is current.
        held = request.headers.get("if-none-match")
        if etag_matches(held, plain_tag) or etag_matches(held, gzip_tag):
            return Response(status_code=304, headers=headers)
        if packed is None:
            return Response(self.body, media_type=self.media_type, headers=headers)
        headers["content-encoding"] = "gzip"
        return Response(packed, media_type=self.media_type, headers=headers)


@dataclass(frozen=True, slots=True)
class Bundle:
    """The page and its assets, by fingerprinted name; ``urls`` maps source names to URLs."""

    page: Asset
    assets: Mapping[str, Asset]
    urls: Mapping[str, str]


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` admits gzip (named or ``*``, and not with ``q=0``)."""
    for part in (accept_encoding or "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() not in {"gzip", "*"}:
            continue
        quality = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
        try:
            return float(quality) > 0
        except ValueError:
            return False
    return False


def load_bundle(directory: Path = STATIC_DIR, headers: Mapping[str, str] | None = None) -> Bundle:
    """Read, fingerprint and compress ``directory``; ``headers`` go on the page.

    A placeholder naming no file fails here, at start, not as a broken page.
    """
    assets: dict[str, Asset] = {}
    urls: dict[str, str] = {}
    immutable = {"cache-control": IMMUTABLE}
    for path in sorted(directory.iterdir()):
        if path.name == PAGE or not path.is_file():
            continue
        asset = Asset.of(path.read_bytes(), path.suffix, immutable)
        name = f"{path.stem}.{asset.digest}{path.suffix}"
        assets[name] = asset
        urls[path.name] = ASSET_PREFIX + name

    def url_of(match: re.Match[str]) -> str:
        if match.group(1) not in urls:
            raise LookupError(f"{PAGE} names {match.group(1)!r}, which is not in {directory}")
        return urls[match.group(1)]

    html = _PLACEHOLDER.sub(url_of, (directory / PAGE).read_text(encoding="utf-8"))
    page = Asset.of(html.encode(), ".html", {"cache-control": NO_CACHE, **(headers or {})})
    return Bundle(page, assets, urls)
