"""Signing keys: the Ed25519 keys that sign access tokens, and the JWKS that publishes them.

A key goes through three states::

    active   signs every new token; exactly one at a time
    retired  signs nothing, stays in the JWKS until every token it signed has expired
    deleted  by the next rotation, once no token it signed can still be valid

The first key is made when the service starts (or, failing that, by the
first login); ``python -m services.user rotate-key`` makes the next. Both
take one advisory lock, and a unique partial index allows one active key, so
replicas starting at once cannot both make one.

The private keys live in Postgres so that the local stack needs nothing else.
A real deployment keeps them in a KMS or secret store (signing through its
API, or mounting the key as a secret) and never in a table a backup or a
read replica can leak.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.chassis.db import create_engine, session_scope
from services.user.config import UserSettings
from services.user.models import SigningKey
from services.user.repository import SigningKeyRepository

__all__ = [
    "ALGORITHM",
    "RETIRED_KEY_GRACE",
    "TokenSigner",
    "ensure_active_key",
    "rotate",
    "rotate_key",
]

ALGORITHM: Final = "EdDSA"
# Covers a token signed by a login that read the key just before a rotation
# committed, and verifier clocks a little ahead of ours.
RETIRED_KEY_GRACE: Final = timedelta(seconds=60)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _public_jwk(public_raw: bytes) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(public_raw)}


def _new_key() -> tuple[str, str]:
    """A fresh key as (kid, PKCS#8 PEM).

    The kid is the key's RFC 7638 thumbprint: derived from the public key, so
    it cannot collide by accident and anyone can recompute it.
    """
    key = Ed25519PrivateKey.generate()
    public_raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    canonical = orjson.dumps(_public_jwk(public_raw), option=orjson.OPT_SORT_KEYS)
    kid = _b64url(hashlib.sha256(canonical).digest())
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    return kid, pem


async def ensure_active_key(keys: SigningKeyRepository) -> SigningKey:
    """The active key, made first if there is none (once, however many processes ask)."""
    active = await keys.active()
    if active is not None:
        return active
    await keys.lock()
    # Whoever held the lock before us may have just made one.
    active = await keys.active()
    if active is not None:
        return active
    kid, pem = _new_key()
    return await keys.add(kid=kid, private_key_pem=pem)


def _published_after(ttl_seconds: int) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=ttl_seconds) - RETIRED_KEY_GRACE


async def rotate_key(keys: SigningKeyRepository, *, access_token_ttl_seconds: int) -> str:
    """Retire the active key, make a new one and return its kid.

    Keys retired so long ago that no token they signed is still valid are
    deleted: a private key nobody needs is only a liability.
    """
    await keys.lock()
    await keys.retire_active(datetime.now(UTC))
    await keys.delete_retired_before(_published_after(access_token_ttl_seconds))
    kid, pem = _new_key()
    await keys.add(kid=kid, private_key_pem=pem)
    return kid


async def rotate(settings: UserSettings) -> str:
    """What ``python -m services.user rotate-key`` runs; the new kid."""
    engine = create_engine(settings)
    try:
        async with session_scope(async_sessionmaker(engine)) as session:
            return await rotate_key(
                SigningKeyRepository(session),
                access_token_ttl_seconds=settings.access_token_ttl_seconds,
            )
    finally:
        await engine.dispose()


class TokenSigner:
    """Issues access tokens and describes the keys that verify them."""

    def __init__(self, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        # Parsed keys by kid: a key never changes under its kid.
        self._parsed: dict[str, Ed25519PrivateKey] = {}

    def _private(self, key: SigningKey) -> Ed25519PrivateKey:
        parsed = self._parsed.get(key.kid)
        if parsed is None:
            loaded = load_pem_private_key(key.private_key_pem.encode(), password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise TypeError(f"signing key {key.kid} is not an Ed25519 key")
            parsed = self._parsed[key.kid] = loaded
        return parsed

    def issue(self, key: SigningKey, user_id: uuid.UUID) -> str:
        """A signed access token for ``user_id``, valid for ``ttl_seconds``."""
        now = int(datetime.now(UTC).timestamp())
        claims = {
            "sub": str(user_id),
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._private(key), algorithm=ALGORITHM, headers={"kid": key.kid})

    def jwk(self, key: SigningKey) -> dict[str, str]:
        """The public half of ``key`` as a JWK (RFC 8037)."""
        public_raw = self._private(key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {**_public_jwk(public_raw), "kid": key.kid, "alg": ALGORITHM, "use": "sig"}

    def published_after(self) -> datetime:
        """Keys retired after this instant may have signed a token still valid."""
        return _published_after(self.ttl_seconds)
