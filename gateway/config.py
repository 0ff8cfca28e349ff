"""Settings of the gateway, read from ``GATEWAY_*`` variables."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.chassis.config import (
    ClickPublisherSettings,
    InternalAuthSettings,
    RedisSettings,
    ServiceSettings,
)

__all__ = ["GatewaySettings"]


class GatewaySettings(ServiceSettings, RedisSettings, ClickPublisherSettings, InternalAuthSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    port: int = Field(8000, ge=1, le=65535)
    # Share of successful requests given an access line (errors always are;
    # RED metrics count every request). Every request by default; a line
    # costs ~2 µs (services/chassis/accesslog.py).
    access_log_sample: float = Field(1.0, ge=0, le=1)
    link_service_url: str = "http://127.0.0.1:8001"
    user_service_url: str = "http://127.0.0.1:8002"
    analytics_service_url: str = "http://127.0.0.1:8003"
    webhooks_service_url: str = "http://127.0.0.1:8004"
    upstream_connect_timeout_seconds: float = Field(1.0, gt=0)
    upstream_max_connections: int = Field(256, ge=1)
    # Resilience per upstream (docs/resilience.md). A timeout bounds the wait
    # for an answer (then 504); the in-flight cap is the bulkhead (then 503).
    link_timeout_seconds: float = Field(2.0, gt=0)
    user_timeout_seconds: float = Field(5.0, gt=0)
    analytics_timeout_seconds: float = Field(5.0, gt=0)
    webhooks_timeout_seconds: float = Field(5.0, gt=0)
    link_max_in_flight: int = Field(512, ge=1)
    user_max_in_flight: int = Field(64, ge=1)
    analytics_max_in_flight: int = Field(64, ge=1)
    webhooks_max_in_flight: int = Field(64, ge=1)
    # Consecutive failures (no connection, timeout) that open a breaker, and
    # how long it stays open before one trial request is let through.
    breaker_fail_max: int = Field(5, ge=1)
    breaker_reset_seconds: float = Field(5.0, gt=0)
    # Retries of idempotent requests whose connection failed: at most this
    # many per request, and at most `ratio` of recent requests plus `min`.
    retry_max: int = Field(2, ge=0)
    retry_budget_ratio: float = Field(0.1, ge=0, le=1)
    retry_budget_min: float = Field(10.0, ge=0)
    retry_backoff_base_seconds: float = Field(0.025, gt=0)
    retry_backoff_cap_seconds: float = Field(0.25, gt=0)
    # Redirects the link service resolves, sent as batches of the visits that
    # arrive together (gateway/lookups.py, ADR 0012): at most this many
    # batches out at once (0: each redirect its own request), of at most
    # this many visits.
    link_batches_in_flight: int = Field(4, ge=0)
    link_batch_max_visits: int = Field(64, ge=1, le=256)
    # Redirects replayed while the link service cannot answer (0 turns it off).
    stale_max_entries: int = Field(10_000, ge=0)
    stale_max_age_seconds: float = Field(300.0, ge=0)
    # How long a redirect the gateway learned is served from its memory
    # without the link hop (0 turns it off); also the bound on how late a
    # change made through another replica can be seen (gateway/stale.py).
    redirect_cache_seconds: float = Field(5.0, ge=0)
    # The Redis in which the link service publishes its redirect read model
    # (LINK_REDIS_URL's): a redirect not in memory is answered from it
    # without the link hop (gateway/readmodel.py, ADR 0022). Empty: every
    # such redirect goes to the link service. Timeouts and breaker: GATEWAY_REDIS_*.
    redirect_read_model_url: str = ""
    # The key the link service hashes client addresses with (LINK_IP_HASH_KEY):
    # the gateway publishes the clicks of replayed redirects itself.
    ip_hash_key: SecretStr | None = None
    # Comma-separated CIDRs of proxies in front of the gateway (an nginx edge,
    # a load balancer) whose X-Forwarded-For is believed. Empty: none.
    trusted_proxies: str = ""
    jwt_issuer: str = "shortener"
    jwt_audience: str = "shortener"
    # How long a verified API key is believed without asking the user service.
    api_key_cache_seconds: float = Field(10.0, ge=0)
    # Limits in the `limits` notation ("N/second|minute|hour").
    ratelimit_redirect: str = "6000/minute"
    ratelimit_create: str = "120/minute"
    ratelimit_create_anonymous: str = "10/minute"
    ratelimit_auth: str = "10/minute"
    ratelimit_api: str = "1200/minute"
    # How often the redirect policy's local counts are shared through Redis:
    # the window in which other replicas' hits are not yet seen (gateway/windows.py).
    ratelimit_sync_seconds: float = Field(0.1, gt=0)
