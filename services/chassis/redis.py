"""Redis clients with short timeouts: a cache that hangs is worse than none."""

from __future__ import annotations

from redis.asyncio import Redis

from services.chassis.config import RedisSettings

__all__ = ["create_redis"]


def create_redis(settings: RedisSettings) -> Redis:
    """A pooled client that fails fast instead of waiting on a dead server."""
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        health_check_interval=30,
        max_connections=200,
    )
