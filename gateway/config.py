"""Settings of the gateway, read from ``GATEWAY_*`` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.chassis.config import InternalAuthSettings, RedisSettings, ServiceSettings

__all__ = ["GatewaySettings"]


class GatewaySettings(ServiceSettings, RedisSettings, InternalAuthSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    port: int = Field(8000, ge=1, le=65535)
    link_service_url: str = "http://127.0.0.1:8001"
    user_service_url: str = "http://127.0.0.1:8002"
    analytics_service_url: str = "http://127.0.0.1:8003"
    upstream_connect_timeout_seconds: float = Field(1.0, gt=0)
    upstream_timeout_seconds: float = Field(5.0, gt=0)
    upstream_max_connections: int = Field(256, ge=1)
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
