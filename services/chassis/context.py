"""Per-request context carried by context variables (request id)."""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

__all__ = ["REQUEST_ID_HEADER", "accept_request_id", "new_id", "request_id_var"]

REQUEST_ID_HEADER = "x-request-id"
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def accept_request_id(raw: bytes | None) -> str:
    """Keep a caller's request id when it is well-formed, else make a new one.

    A request id ends up in every log line, so one from outside is accepted
    only if it cannot inject anything into them.
    """
    if raw:
        candidate = raw.decode("latin-1")
        if _VALID_REQUEST_ID.fullmatch(candidate):
            return candidate
    return new_id()


_random = bytearray()


def new_id() -> str:
    """128 random bits in hex (32 characters, the shape of ``uuid4().hex``).

    From the OS's generator, read 4 KiB at a time: one ``getrandom`` call per
    request was ~10% of a cached redirect's CPU in the gateway (py-spy,
    docs/performance.md).
    """
    if len(_random) < 16:
        _random.extend(os.urandom(4096))
    chunk = _random[:16]
    del _random[:16]
    return chunk.hex()
