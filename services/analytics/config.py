"""Settings of the analytics service: ``ANALYTICS_*`` variables, and ``INTERNAL_AUTH_KEY``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.chassis.config import (
    ConsumerSettings,
    DatabaseSettings,
    InternalAuthSettings,
    PruneSettings,
    RedisSettings,
    ServiceSettings,
)

__all__ = ["AnalyticsSettings"]


class AnalyticsSettings(
    ServiceSettings,
    DatabaseSettings,
    RedisSettings,
    ConsumerSettings,
    InternalAuthSettings,
    PruneSettings,
):
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", extra="ignore", frozen=True)

    port: int = Field(8003, ge=1, le=65535)
    # Replicas share a group and split the partitions of ``clicks`` between them.
    # A group counts into one database: another database needs another group.
    consumer_group: str = "analytics"
    # The links topic has a group of its own, so that a slow click batch never
    # holds back ownership changes. Unset, it follows ``consumer_group``
    # ("analytics-links"), so changing the one group moves both.
    links_consumer_group: str | None = None
    # A batch is one transaction: bigger batches amortise its round trips and
    # commit, smaller ones bound the work redone after a crash. Measured on
    # the local stack (2 cores): about 10k events/s at 500, 20k at 2000.
    batch_max_records: int = Field(2000, ge=1, le=5000)
    batch_timeout_ms: int = Field(500, ge=10, le=10_000)
    # A write that takes longer is abandoned and retried: a database that
    # hangs (rather than refuses) must show as an outage, not as silence.
    write_timeout_seconds: float = Field(30.0, gt=0)
    # How long a rebalance waits for the batch in flight to be written and
    # committed before it hands the partitions over anyway (deduplication
    # makes that safe, only slower).
    rebalance_wait_seconds: float = Field(10.0, gt=0)
    # Unique visitors are kept per link per day for this long (Redis TTL).
    unique_visitor_retention_days: int = Field(400, ge=1)
    # Distinct User-Agent strings whose parse is remembered; parsing one
    # costs about a millisecond and real traffic repeats a few thousand.
    user_agent_cache_size: int = Field(8192, ge=0)

    # How long an event's claim is kept: a click can be delivered again only
    # while the topic still holds it, so at least the clicks topic's
    # retention (Kafka's default, used here: 7 days) plus a margin.
    processed_events_retention_hours: float = Field(192.0, gt=0)

    @property
    def links_group(self) -> str:
        return self.links_consumer_group or f"{self.consumer_group}-links"
