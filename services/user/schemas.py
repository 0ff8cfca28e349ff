"""API models of the user service (never the ORM classes)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AccessGrant",
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyOut",
    "ApiKeyOwner",
    "ApiKeyPresented",
    "Credentials",
    "Jwk",
    "Jwks",
    "RefreshRequest",
    "UserOut",
]


class Credentials(BaseModel):
    """An email address and a password (the service checks both)."""

    model_config = ConfigDict(extra="forbid")

    # Generous bounds that only limit the work; the rules are in the service.
    email: str = Field(
        max_length=320, examples=["ada@example.com"], json_schema_extra={"format": "email"}
    )
    password: str = Field(max_length=1024, examples=["correct horse battery staple"])


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    created_at: datetime


class AccessGrant(BaseModel):
    """What a login or a refresh returns (RFC 6749 token response)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str = Field(
        description="Single use: exchange it for a new pair at /api/v1/auth/refresh."
    )


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(max_length=256)


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # No control characters: a name is shown in lists, and Postgres text
    # cannot hold NUL at all (found by the fuzzer as a 500).
    name: str = Field(
        min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$", examples=["ci deploys"]
    )


class ApiKeyOut(BaseModel):
    """An API key as listed: never the key itself."""

    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(BaseModel):
    """A new API key: ``key`` is shown here and never again."""

    id: uuid.UUID
    name: str
    prefix: str
    key: str
    created_at: datetime


class ApiKeyPresented(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(max_length=256)


class ApiKeyOwner(BaseModel):
    user_id: uuid.UUID
    key_id: uuid.UUID


class Jwk(BaseModel):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    alg: Literal["EdDSA"]
    use: Literal["sig"]


class Jwks(BaseModel):
    keys: list[Jwk]
