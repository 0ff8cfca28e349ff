"""Settings of the webhooks service: ``WEBHOOKS_*`` variables, and ``INTERNAL_AUTH_KEY``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.chassis.config import (
    ConsumerSettings,
    DatabaseSettings,
    InternalAuthSettings,
    PruneSettings,
    ServiceSettings,
)

__all__ = ["WebhooksSettings"]


class WebhooksSettings(
    ServiceSettings, DatabaseSettings, ConsumerSettings, InternalAuthSettings, PruneSettings
):
    model_config = SettingsConfigDict(env_prefix="WEBHOOKS_", extra="ignore", frozen=True)

    port: int = Field(8004, ge=1, le=65535)
    # Its own groups: webhooks read every click and link change whatever
    # analytics does, and one slow side never holds back the other.
    consumer_group: str = "webhooks"
    links_consumer_group: str | None = None
    # Seconds to wait before each attempt (the first is "now"): Svix's
    # schedule, about 27.6 hours in all. Each wait gets +-20 % jitter. A
    # delivery still failing after the last is given up (state "failed").
    retry_schedule_seconds: Annotated[tuple[float, ...], NoDecode] = (
        0,
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        36000,
    )
    retry_jitter: float = Field(0.2, ge=0, le=1)
    # An endpoint whose deliveries have all failed for this long (no success
    # in between) is disabled, with the reason shown to its owner.
    disable_after_seconds: float = Field(5 * 24 * 3600.0, gt=0)
    # At most this many requests in flight to one endpoint, per replica: a
    # slow endpoint waits on its own slots, never on another's.
    endpoint_concurrency: int = Field(2, ge=1, le=100)
    # At most this many requests in flight in all, per replica.
    max_in_flight: int = Field(64, ge=1, le=10_000)
    # Clicks of one consumed batch for one endpoint go out as one delivery
    # of at most this many (data.clicks).
    click_batch_max: int = Field(100, ge=1, le=1000)
    # How often the dispatcher looks for due deliveries when idle.
    poll_interval_seconds: float = Field(0.5, gt=0)
    # How long a claimed delivery is ours: past it (a crashed replica),
    # another replica takes it. Longer than a request can take.
    lease_seconds: float = Field(60.0, gt=0)
    # How long the old secret keeps signing after a rotation, by default.
    rotation_overlap_seconds: float = Field(24 * 3600.0, ge=0)
    # A click of a link not yet known (its link.created still on its way) is
    # parked this long for its owner to become known, then dropped, counted.
    parked_click_hours: float = Field(24.0, gt=0)
    # Delivered or given up deliveries (with their attempts, the delivery
    # log) are kept this long; never below the topics' retention (7 days),
    # or an event consumed again could be owed again.
    delivery_retention_hours: float = Field(720.0, ge=192.0)
    # Egress (services/webhooks/egress.py): private targets refused unless
    # allowed, for local testing only.
    allow_private_targets: bool = False
    allowed_networks: Annotated[tuple[str, ...], NoDecode] = ()
    connect_timeout_seconds: float = Field(5.0, gt=0)
    total_timeout_seconds: float = Field(15.0, gt=0)

    @field_validator("retry_schedule_seconds", "allowed_networks", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        # One variable, a comma list: "0,5,300" and "127.0.0.0/8,10.0.0.0/8".
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("retry_schedule_seconds")
    @classmethod
    def _schedule(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(wait < 0 for wait in value):
            raise ValueError("a non-empty list of waits in seconds, none negative")
        return value

    @property
    def links_group(self) -> str:
        return self.links_consumer_group or f"{self.consumer_group}-links"
