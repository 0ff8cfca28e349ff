"""Settings of the gateway, read from ``GATEWAY_*`` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.chassis.config import ServiceSettings

__all__ = ["GatewaySettings"]


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    port: int = Field(8000, ge=1, le=65535)
    link_service_url: str = "http://127.0.0.1:8001"
    upstream_connect_timeout_seconds: float = Field(1.0, gt=0)
    upstream_timeout_seconds: float = Field(5.0, gt=0)
    upstream_max_connections: int = Field(256, ge=1)
