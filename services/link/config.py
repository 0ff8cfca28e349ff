"""Settings of the link service, read from ``LINK_*`` variables."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.chassis.config import (
    ClickPublisherSettings,
    DatabaseSettings,
    InternalAuthSettings,
    PruneSettings,
    RedisSettings,
    ServiceSettings,
)

__all__ = ["LinkSettings"]


class LinkSettings(
    ServiceSettings,
    DatabaseSettings,
    RedisSettings,
    ClickPublisherSettings,
    InternalAuthSettings,
    PruneSettings,
):
    model_config = SettingsConfigDict(env_prefix="LINK_", extra="ignore", frozen=True)

    # Published outbox rows are kept this long, to answer "did it go out, and
    # when"; two days is about 7 M rows at docs/capacity.md's average rate.
    outbox_retention_hours: float = Field(48.0, gt=0)

    port: int = Field(8001, ge=1, le=65535)
    # Where short links point: the public address of the gateway.
    public_base_url: str = "http://127.0.0.1:8000"
    # 7 base62 characters: 3.5e12 codes, see docs/capacity.md.
    code_length: int = Field(7, ge=5, le=16)
    cache_ttl_seconds: int = Field(3600, ge=1)
    # Unknown codes are remembered briefly so that scans do not reach Postgres.
    negative_cache_ttl_seconds: int = Field(60, ge=1)
    # How long browsers may keep a 301/308; cached visits are not counted.
    permanent_redirect_max_age_seconds: int = Field(3600, ge=0)
    # Key of the HMAC that turns client addresses into visitor ids. Set it in
    # every real deployment: without it each process draws its own, and the
    # same visitor counts once per process.
    ip_hash_key: SecretStr | None = None
    # Anonymous callers may shorten (under the gateway's stricter limit) unless
    # this is off; listing, changing and deleting always need an owner.
    allow_anonymous_create: bool = True
