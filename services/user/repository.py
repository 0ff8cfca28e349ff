"""Queries on the user service's tables. Flushes, never commits.

Every state change that two requests could race for is a single conditional
statement (``INSERT ... ON CONFLICT``, ``UPDATE ... WHERE ... RETURNING``) or
runs under a row or advisory lock, so the database, not the timing, decides
who wins.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.user.models import ApiKey, RefreshToken, SigningKey, User

__all__ = [
    "ApiKeyRepository",
    "RefreshTokenRepository",
    "SigningKeyRepository",
    "UserRepository",
]

# Any constant, the same in every process: it serialises creating and
# retiring signing keys across replicas and the rotate-key command.
_SIGNING_KEYS_LOCK = 0x7573_6572_5F6B_6579  # "user_key"


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_if_free(self, *, email: str, password_hash: str) -> User | None:
        """Insert a user, or return None when ``email`` is taken (race-free, like links)."""
        statement = (
            insert(User)
            .values(id=uuid.uuid4(), email=email, password_hash=password_hash)
            .on_conflict_do_nothing(index_elements=[User.email])
            .returning(User)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        statement = select(User).where(User.email == email)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def lock(self, user_id: uuid.UUID) -> bool:
        """Lock the user's row until commit; False when there is no such user."""
        statement = select(User.id).where(User.id == user_id).with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none() is not None

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        await self.session.execute(
            update(User).where(User.id == user_id).values(password_hash=password_hash)
        )


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self, *, user_id: uuid.UUID, family_id: uuid.UUID, token_hash: bytes, expires_at: datetime
    ) -> None:
        await self.session.execute(
            insert(RefreshToken).values(
                id=uuid.uuid4(),
                user_id=user_id,
                family_id=family_id,
                token_hash=token_hash,
                expires_at=expires_at,
            )
        )

    async def use(self, token_hash: bytes, now: datetime) -> RefreshToken | None:
        """Mark a live, unused token used and return it; None when it is not one.

        One statement: of two requests presenting the same token at once,
        the second waits for the first's row lock, re-reads ``used_at`` and
        matches nothing.
        """
        statement = (
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == token_hash,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(RefreshToken)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get_by_hash(self, token_hash: bytes) -> RefreshToken | None:
        statement = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count_active(self, user_id: uuid.UUID) -> int:
        statement = select(func.count()).where(
            ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None)
        )
        return (await self.session.execute(statement)).scalar_one()

    async def add(self, *, user_id: uuid.UUID, name: str, prefix: str, key_hash: bytes) -> ApiKey:
        statement = (
            insert(ApiKey)
            .values(id=uuid.uuid4(), user_id=user_id, name=name, prefix=prefix, key_hash=key_hash)
            .returning(ApiKey)
        )
        return (await self.session.execute(statement)).scalar_one()

    async def list_for(self, user_id: uuid.UUID) -> Sequence[ApiKey]:
        statement = (
            select(ApiKey)
            .where(ApiKey.user_id == user_id)
            .order_by(ApiKey.created_at.desc(), ApiKey.id)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def revoke(self, key_id: uuid.UUID, *, user_id: uuid.UUID, now: datetime) -> bool:
        """Revoke the user's key (again is fine); False when the user has no such key."""
        statement = (
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.user_id == user_id)
            .values(revoked_at=func.coalesce(ApiKey.revoked_at, now))
            .returning(ApiKey.id)
        )
        return (await self.session.execute(statement)).scalar_one_or_none() is not None

    async def find_active(self, key_hash: bytes) -> ApiKey | None:
        statement = select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def touch(self, key_id: uuid.UUID, *, now: datetime, stale_before: datetime) -> None:
        """Record a use, unless one was recorded since ``stale_before`` (by anyone)."""
        await self.session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < stale_before),
            )
            .values(last_used_at=now)
        )


class SigningKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock(self) -> None:
        """Wait for, then hold until commit, the lock every key change takes."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SIGNING_KEYS_LOCK}
        )

    async def active(self) -> SigningKey | None:
        statement = select(SigningKey).where(SigningKey.retired_at.is_(None))
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def add(self, *, kid: str, private_key_pem: str) -> SigningKey:
        statement = (
            insert(SigningKey)
            .values(kid=kid, private_key_pem=private_key_pem)
            .returning(SigningKey)
        )
        return (await self.session.execute(statement)).scalar_one()

    async def retire_active(self, now: datetime) -> None:
        await self.session.execute(
            update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=now)
        )

    async def published(self, retired_after: datetime) -> Sequence[SigningKey]:
        """The active key and those retired after ``retired_after``, newest first."""
        statement = (
            select(SigningKey)
            .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > retired_after))
            .order_by(SigningKey.created_at.desc())
        )
        return (await self.session.execute(statement)).scalars().all()

    async def delete_retired_before(self, cutoff: datetime) -> None:
        await self.session.execute(delete(SigningKey).where(SigningKey.retired_at < cutoff))
