"""Per-request context carried by context variables (request id)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

__all__ = ["REQUEST_ID_HEADER", "accept_request_id", "request_id_var"]

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
    return uuid.uuid4().hex
