"""Standard Webhooks headers, signed by the ``standardwebhooks`` library.

Every attempt is signed afresh (its ``webhook-timestamp`` is the time of the
attempt: receivers refuse timestamps older than five minutes), with every
secret that is active: during a rotation's overlap the old and the new,
space-separated in ``webhook-signature`` as the specification allows, so a
receiver that still has the old secret verifies as well as one that has the
new.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook

__all__ = ["message_id", "new_secret", "signed_headers"]

SECRET_BYTES = 24


def new_secret() -> str:
    """A fresh ``whsec_`` secret: base64 of 24 random bytes, as the spec shows them."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def message_id(delivery_id: uuid.UUID) -> str:
    """The ``webhook-id`` of a delivery: the same on every attempt of it."""
    return f"msg_{delivery_id.hex}"


def signed_headers(
    active_secrets: Sequence[str], msg_id: str, at: datetime, body: bytes
) -> dict[str, str]:
    """The headers of one attempt: id, timestamp, and one signature per secret."""
    signature = " ".join(Webhook(s).sign(msg_id, at, body) for s in active_secrets)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
