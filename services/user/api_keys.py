"""The rules of API keys: at most a few per user, shown once, checked by the gateway.

A key is ``sk_`` plus 256 random bits. The service keeps its SHA-256 digest
(see ``opaque.py``) and its first characters, which are enough for a person
to tell keys apart in a list and useless to anyone else.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.chassis.db import session_scope
from services.chassis.errors import UnauthorizedError
from services.user.exceptions import (
    ApiKeyNotFound,
    InvalidApiKey,
    TooManyApiKeys,
)
from services.user.models import ApiKey
from services.user.opaque import API_KEY_PREFIX, digest, new_api_key
from services.user.repository import ApiKeyRepository, UserRepository

__all__ = ["MAX_ACTIVE_API_KEYS", "ApiKeyService", "NewApiKey"]

log = logging.getLogger(__name__)
VERIFICATIONS = Counter(
    "user_api_key_verifications_total", "API key checks for the gateway by result.", ["result"]
)
_VALID, _INVALID = VERIFICATIONS.labels("valid"), VERIFICATIONS.labels("invalid")

MAX_ACTIVE_API_KEYS: Final = 20
DISPLAY_PREFIX_LENGTH: Final = 10
# last_used_at answers "is this key still in use?", for which a minute is
# precise enough; a write on every request would put the primary on the
# path of every API call.
LAST_USED_RESOLUTION: Final = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    record: ApiKey
    key: str  # the only time the plain key exists outside the client


class ApiKeyService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def create(self, user_id: uuid.UUID, name: str) -> NewApiKey:
        """A new key for the user, unless they already have the most allowed."""
        key = new_api_key()
        async with session_scope(self.sessions) as session:
            # Holding the user's row makes count-then-insert atomic: two
            # creations racing at 19 keys cannot both pass the check.
            if not await UserRepository(session).lock(user_id):
                raise UnauthorizedError("The account no longer exists.")
            keys = ApiKeyRepository(session)
            if await keys.count_active(user_id) >= MAX_ACTIVE_API_KEYS:
                raise TooManyApiKeys(
                    f"At most {MAX_ACTIVE_API_KEYS} API keys can be active; revoke one first."
                )
            record = await keys.add(
                user_id=user_id,
                name=name,
                prefix=key[:DISPLAY_PREFIX_LENGTH],
                key_hash=digest(key),
            )
        log.info("api key created", extra={"user_id": str(user_id), "key_id": str(record.id)})
        return NewApiKey(record, key)

    async def list_for(self, user_id: uuid.UUID) -> Sequence[ApiKey]:
        """The user's keys, revoked ones included, newest first."""
        async with session_scope(self.sessions) as session:
            return await ApiKeyRepository(session).list_for(user_id)

    async def revoke(self, user_id: uuid.UUID, key_id: str) -> None:
        """Revoke one of the user's keys; revoking it again is fine."""
        # 404, not 403, for another user's key: a 403 would confirm that the
        # id exists. A malformed id is just as absent (404, not 422).
        try:
            parsed = uuid.UUID(key_id)
        except ValueError:
            raise ApiKeyNotFound(f"No API key with id '{key_id[:64]}'.") from None
        async with session_scope(self.sessions) as session:
            found = await ApiKeyRepository(session).revoke(
                parsed, user_id=user_id, now=datetime.now(UTC)
            )
        if not found:
            raise ApiKeyNotFound(f"No API key with id '{parsed}'.")
        log.info("api key revoked", extra={"user_id": str(user_id), "key_id": str(parsed)})

    async def verify(self, key: str) -> ApiKey:
        """The active key ``key`` is, for the gateway; records its use."""
        if not key.startswith(API_KEY_PREFIX):
            _INVALID.inc()
            raise InvalidApiKey("The API key is unknown or revoked.")
        now = datetime.now(UTC)
        stale_before = now - LAST_USED_RESOLUTION
        async with session_scope(self.sessions) as session:
            keys = ApiKeyRepository(session)
            # Found by digest through the unique index, so no secret is
            # compared in Python: the lookup's timing could only reveal bits
            # of a SHA-256 digest, which bring nobody closer to a key.
            record = await keys.find_active(digest(key))
            if record is not None and (
                record.last_used_at is None or record.last_used_at < stale_before
            ):
                await keys.touch(record.id, now=now, stale_before=stale_before)
        if record is None:
            _INVALID.inc()
            raise InvalidApiKey("The API key is unknown or revoked.")
        _VALID.inc()
        return record
