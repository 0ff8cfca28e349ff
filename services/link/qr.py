"""QR codes of short links, drawn by segno (pure Python, no image library).

An image depends only on the short URL, the format, the size and segno's
version, so its ETag is a hash of those: a revalidation is answered 304
without drawing anything. Drawing takes about a millisecond for PNG at the
default size; it runs in a worker thread all the same, so a large image
never holds up the event loop (and the redirects it serves).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from dataclasses import dataclass
from typing import Final, Literal

import segno

__all__ = ["MAX_SIZE", "MIN_SIZE", "QrFormat", "QrImage", "render"]

QrFormat = Literal["png", "svg"]
MIN_SIZE: Final = 64
MAX_SIZE: Final = 2048
# Medium error correction survives a smudge or a logo-sized scratch and keeps
# a short URL at a small version (fewer, larger modules: easier to scan).
_ERROR: Final = "m"
# The quiet zone the standard asks for around the symbol, in modules.
_BORDER: Final = 4
_MEDIA_TYPES: Final = {"png": "image/png", "svg": "image/svg+xml"}


@dataclass(frozen=True, slots=True)
class QrImage:
    """A QR code of ``url`` at ``scale`` pixels per module."""

    url: str
    kind: QrFormat
    scale: int

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self.kind]

    @property
    def etag(self) -> str:
        identity = f"{segno.__version__}|{self.kind}|{self.scale}|{self.url}"
        return '"' + hashlib.sha256(identity.encode()).hexdigest()[:32] + '"'

    def draw(self) -> bytes:
        out = io.BytesIO()
        symbol = segno.make(self.url, error=_ERROR, micro=False)
        if self.kind == "svg":
            # Inline-able in a page: no XML declaration, a title for screen readers.
            symbol.save(
                out, kind="svg", scale=self.scale, border=_BORDER, xmldecl=False, title=self.url
            )
        else:
            symbol.save(out, kind="png", scale=self.scale, border=_BORDER)
        return out.getvalue()

    async def draw_in_thread(self) -> bytes:
        return await asyncio.to_thread(self.draw)


def render(url: str, kind: QrFormat, size: int) -> QrImage:
    """The image of ``url`` as close to ``size`` pixels wide as whole modules allow, not wider."""
    modules = int(segno.make(url, error=_ERROR, micro=False).symbol_size(border=_BORDER)[0])
    return QrImage(url, kind, max(1, size // modules))
