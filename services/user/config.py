"""Settings of the user service, read from ``USER_*`` variables (and ``INTERNAL_AUTH_KEY``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.chassis.config import (
    DatabaseSettings,
    InternalAuthSettings,
    PruneSettings,
    ServiceSettings,
)

__all__ = ["UserSettings"]


class UserSettings(ServiceSettings, DatabaseSettings, InternalAuthSettings, PruneSettings):
    model_config = SettingsConfigDict(env_prefix="USER_", extra="ignore", frozen=True)

    port: int = Field(8002, ge=1, le=65535)
    # Short-lived on purpose: an access token cannot be revoked, only outlived.
    access_token_ttl_seconds: int = Field(900, ge=60, le=24 * 3600)
    refresh_token_ttl_seconds: int = Field(30 * 24 * 3600, ge=300)
    # A login's refresh tokens are deleted this long after the newest of them
    # expired; until then a stolen, already used token presented again is
    # still recognised and revokes the login (services/chassis/janitor.py).
    refresh_token_retention_hours: float = Field(24.0, ge=0)
    jwt_issuer: str = "shortener"
    jwt_audience: str = "shortener"
    # NIST SP 800-63B: at least 8, no composition rules, a blocklist instead.
    password_min_length: int = Field(10, ge=8, le=256)
    # argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): about
    # 20-40 ms per hash, and small enough that a burst of logins cannot eat the
    # memory of a small box. Tests lower them to stay fast.
    argon2_time_cost: int = Field(2, ge=1)
    argon2_memory_cost_kib: int = Field(19 * 1024, ge=8)
    argon2_parallelism: int = Field(1, ge=1)
    # Threads that hash passwords: bounds the CPU and memory a login flood can
    # take (each hash holds argon2_memory_cost_kib while it runs).
    password_hash_workers: int = Field(4, ge=1, le=64)
