"""Authentication at the edge: bearer JWTs and API keys, verified once, here.

A request carries at most one credential: ``Authorization: Bearer <jwt>``,
``Authorization: Bearer sk_...`` or ``X-API-Key: sk_...``. No credential is an
anonymous caller (the services decide what anonymous callers may do); a
credential that does not verify is a 401 here, and never reaches a service.

JWTs are checked locally (signature against the cached JWKS, ``alg`` pinned
to EdDSA so ``none`` or an HMAC trick cannot pass, ``exp``, ``iss``, ``aud``).
API keys are checked by the user service and remembered for a short time:
a revoke through this gateway forgets the key at once; other replicas honour
it within ``api_key_cache_seconds``.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import NamedTuple

import httpx
import jwt

from gateway.jwks import JwksCache
from services.chassis.identity import GatewaySigner, Identity

__all__ = ["ApiKeyVerifier", "AuthError", "Authenticator", "Caller"]

API_KEY_PREFIX = "sk_"


class AuthError(Exception):
    """A credential was presented and did not verify."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class Caller(NamedTuple):
    """Who is calling, and the key their rate limits are counted under."""

    identity: Identity
    limit_key: str


class ApiKeyVerifier:
    def __init__(
        self, client: httpx.AsyncClient, user_url: str, signer: GatewaySigner, ttl_seconds: float
    ) -> None:
        self.client = client
        self.url = f"{user_url}/internal/v1/api-keys/verify"
        self.signer = signer
        self.ttl = ttl_seconds
        # sha256(key) -> (user id, key id, valid until); None user: known bad.
        self._cache: dict[str, tuple[str | None, str, float]] = {}

    async def verify(self, key: str) -> tuple[str, str]:
        """(user id, key id) for a valid key; AuthError otherwise."""
        digest = hashlib.sha256(key.encode()).hexdigest()
        hit = self._cache.get(digest)
        if hit is None or hit[2] < time.monotonic():
            hit = await self._ask(key)
            if len(self._cache) > 100_000:  # bounded: a flood of random keys cannot grow it
                self._cache.clear()
            self._cache[digest] = hit
        user_id, key_id, _ = hit
        if user_id is None:
            raise AuthError("invalid_api_key", "The API key is not valid.")
        return user_id, key_id

    def forget(self, key_id: str) -> None:
        """Drop a revoked key now rather than when its entry expires."""
        for digest in [d for d, (_, k, _) in self._cache.items() if k == key_id]:
            del self._cache[digest]

    async def _ask(self, key: str) -> tuple[str | None, str, float]:
        path = b"/internal/v1/api-keys/verify"
        headers = self.signer.headers("POST", path, Identity(None, "anonymous", ""))
        response = await self.client.post(self.url, json={"key": key}, headers=headers, timeout=2.0)
        until = time.monotonic() + self.ttl
        if response.status_code == 200:
            body = response.json()
            return str(body["user_id"]), str(body["key_id"]), until
        if response.status_code in (401, 404, 422):
            return None, "", until
        response.raise_for_status()  # 5xx: the caller answers 503, nothing is cached
        raise AuthError("invalid_api_key", "The API key could not be checked.")


class Authenticator:
    def __init__(self, jwks: JwksCache, api_keys: ApiKeyVerifier, *, issuer: str, audience: str):
        self.jwks = jwks
        self.api_keys = api_keys
        self.issuer = issuer
        self.audience = audience

    async def authenticate(self, headers: list[tuple[bytes, bytes]], client_ip: str) -> Caller:
        authorization = api_key = None
        for name, value in headers:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"x-api-key":
                api_key = value.decode("latin-1").strip()
        if authorization is not None:
            scheme, _, credential = authorization.partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                raise AuthError("invalid_token", "Use 'Authorization: Bearer <token>'.")
            credential = credential.strip()
            if credential.startswith(API_KEY_PREFIX):
                api_key = credential
            else:
                user_id = await self._verify_jwt(credential)
                return Caller(Identity(user_id, "jwt", client_ip), f"user:{user_id}")
        if api_key is not None:
            user_id, key_id = await self.api_keys.verify(api_key)
            return Caller(Identity(user_id, "api_key", client_ip), f"key:{key_id}")
        return Caller(Identity(None, "anonymous", client_ip), f"ip:{client_ip}")

    async def _verify_jwt(self, token: str) -> str:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError("invalid_token", "The token is malformed.") from None
        if header.get("alg") != "EdDSA" or not isinstance(header.get("kid"), str):
            raise AuthError("invalid_token", "The token is not signed the way ours are.")
        key = await self.jwks.key(header["kid"])
        if key is None:
            raise AuthError("invalid_token", "The token's signing key is unknown.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token_expired", "The token has expired.") from None
        except jwt.InvalidTokenError:
            raise AuthError("invalid_token", "The token is not valid.") from None
        try:
            return str(uuid.UUID(str(claims["sub"])))
        except ValueError:
            raise AuthError("invalid_token", "The token's subject is not a user.") from None
