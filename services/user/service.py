"""The rules of accounts: registering, signing in, refreshing and ending sessions.

A session is a chain of single-use refresh tokens that share a ``family_id``.
Each refresh spends one token and hands out the next; a token spent twice
means two parties hold the chain (a thief and its owner), and since the
service cannot tell which is which, the whole family is revoked and both
must sign in again (OAuth 2.0 Security BCP, refresh token rotation).

Like the link service, each method owns its units of work through
``session_scope``; password hashing runs between them, never inside a
transaction, so a slow hash does not hold a database connection.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.chassis.db import session_scope
from services.chassis.errors import UnauthorizedError
from services.user.exceptions import (
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    InvalidPassword,
    InvalidRefreshToken,
    RefreshTokenReused,
)
from services.user.keys import TokenSigner, ensure_active_key
from services.user.models import User
from services.user.opaque import digest, new_refresh_token
from services.user.passwords import Passwords, password_problem
from services.user.repository import RefreshTokenRepository, SigningKeyRepository, UserRepository
from services.user.schemas import AccessGrant, Credentials

__all__ = ["UserService", "normalized_email"]

log = logging.getLogger(__name__)
REGISTRATIONS = Counter("user_registrations_total", "Registration attempts by result.", ["result"])
LOGINS = Counter("user_logins_total", "Login attempts by result.", ["result"])
REFRESHES = Counter("user_token_refreshes_total", "Refresh attempts by result.", ["result"])


def normalized_email(raw: str) -> str:
    """The address as stored: syntax checked (no DNS lookups), lower-cased."""
    try:
        valid = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    # Lower-cased as a whole: the standard lets the local part be
    # case-sensitive, but no provider treats it so, and users expect
    # Ada@x.com and ada@x.com to be one account.
    return valid.normalized.lower()


class UserService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        passwords: Passwords,
        signer: TokenSigner,
        *,
        password_min_length: int,
        refresh_token_ttl_seconds: int,
    ) -> None:
        self.sessions = sessions
        self.passwords = passwords
        self.signer = signer
        self.password_min_length = password_min_length
        self.refresh_ttl = timedelta(seconds=refresh_token_ttl_seconds)

    async def register(self, data: Credentials) -> User:
        """Create an account; the password is stored only as an argon2id hash."""
        email = normalized_email(data.email)
        problem = password_problem(data.password, email=email, min_length=self.password_min_length)
        if problem is not None:
            REGISTRATIONS.labels("rejected").inc()
            raise InvalidPassword(problem)
        password_hash = await self.passwords.hash(data.password)
        async with session_scope(self.sessions) as session:
            user = await UserRepository(session).insert_if_free(
                email=email, password_hash=password_hash
            )
        if user is None:
            REGISTRATIONS.labels("email_taken").inc()
            # Saying so is deliberate: a person who forgot they have an
            # account needs to hear it, and hiding it would take a
            # confirmation-mail flow this system does not have. Probing
            # addresses this way is slow (one argon2 hash each) and rate
            # limited at the gateway. Login, by contrast, never tells.
            raise EmailTaken("An account with this email address already exists.")
        REGISTRATIONS.labels("created").inc()
        log.info("user registered", extra={"user_id": str(user.id)})
        return user

    async def login(self, data: Credentials) -> AccessGrant:
        """Check the credentials and start a session (a new refresh token family)."""
        # Normalised exactly as at registration. A malformed address matches
        # no user and gets the answer a wrong password gets, not a 422.
        try:
            email: str | None = normalized_email(data.email)
        except InvalidEmail:
            email = None
        user = None
        if email is not None:
            async with session_scope(self.sessions) as session:
                user = await UserRepository(session).get_by_email(email)
        stored_hash = user.password_hash if user is not None else None
        if not await self.passwords.verify(stored_hash, data.password) or user is None:
            LOGINS.labels("failed").inc()
            log.info("login failed", extra={"user_id": str(user.id) if user else None})
            raise InvalidCredentials("The email address or the password is wrong.")
        # The only moment the plain password is at hand: upgrade a hash made
        # with older (cheaper) parameters.
        new_hash = None
        if self.passwords.needs_rehash(user.password_hash):
            new_hash = await self.passwords.hash(data.password)
        async with session_scope(self.sessions) as session:
            if new_hash is not None:
                await UserRepository(session).set_password_hash(user.id, new_hash)
            grant = await self._grant(session, user.id, family_id=uuid.uuid4())
        LOGINS.labels("succeeded").inc()
        log.info("user logged in", extra={"user_id": str(user.id)})
        return grant

    async def refresh(self, refresh_token: str) -> AccessGrant:
        """Spend a refresh token for a new pair; a spent one revokes its whole family."""
        token_hash = digest(refresh_token)
        now = datetime.now(UTC)
        async with session_scope(self.sessions) as session:
            tokens = RefreshTokenRepository(session)
            spent = await tokens.use(token_hash, now)
            if spent is not None:
                grant = await self._grant(session, spent.user_id, family_id=spent.family_id)
                REFRESHES.labels("succeeded").inc()
                return grant
            known = await tokens.get_by_hash(token_hash)
            reused = known is not None and known.used_at is not None and known.revoked_at is None
            if known is not None and reused:
                await tokens.revoke_family(known.family_id, now)
        # Raised after the commit: the revocation must stick although the
        # request fails.
        if known is not None and reused:
            REFRESHES.labels("reused").inc()
            log.warning(
                "refresh token reused, session revoked",
                extra={"user_id": str(known.user_id), "family_id": str(known.family_id)},
            )
            raise RefreshTokenReused(
                "This refresh token was already used; the session is revoked. Sign in again."
            )
        REFRESHES.labels("invalid").inc()
        raise InvalidRefreshToken("The refresh token is unknown, expired or revoked.")

    async def logout(self, refresh_token: str) -> None:
        """End the session the token belongs to.

        An unknown or already revoked token is not an error: logging out
        twice (a retried request) leaves the same state as once.
        """
        async with session_scope(self.sessions) as session:
            tokens = RefreshTokenRepository(session)
            known = await tokens.get_by_hash(digest(refresh_token))
            if known is not None:
                await tokens.revoke_family(known.family_id, datetime.now(UTC))
        if known is not None:
            log.info("user logged out", extra={"user_id": str(known.user_id)})

    async def get(self, user_id: uuid.UUID) -> User:
        """The account of an authenticated caller."""
        async with session_scope(self.sessions) as session:
            user = await UserRepository(session).get(user_id)
        if user is None:
            # A credential for an account that no longer exists vouches for nobody.
            raise UnauthorizedError("The account no longer exists.")
        return user

    async def jwks(self) -> list[dict[str, str]]:
        """The public keys of every key that may have signed a still-valid token."""
        async with session_scope(self.sessions) as session:
            keys = await SigningKeyRepository(session).published(self.signer.published_after())
        return [self.signer.jwk(key) for key in keys]

    async def ensure_signing_key(self) -> str:
        """Make sure a signing key exists (at startup, before the first login); its kid."""
        async with session_scope(self.sessions) as session:
            key = await ensure_active_key(SigningKeyRepository(session))
        return key.kid

    async def _grant(
        self, session: AsyncSession, user_id: uuid.UUID, *, family_id: uuid.UUID
    ) -> AccessGrant:
        refresh_token = new_refresh_token()
        await RefreshTokenRepository(session).add(
            user_id=user_id,
            family_id=family_id,
            token_hash=digest(refresh_token),
            expires_at=datetime.now(UTC) + self.refresh_ttl,
        )
        # Read in the transaction rather than cached: after a rotation every
        # replica signs with the new key from its next login on.
        key = await ensure_active_key(SigningKeyRepository(session))
        return AccessGrant(
            access_token=self.signer.issue(key, user_id),
            expires_in=self.signer.ttl_seconds,
            refresh_token=refresh_token,
        )
