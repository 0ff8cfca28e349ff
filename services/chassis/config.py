"""Settings shared by every process, read from the environment.

Each service subclasses the mixins it needs and sets its own ``env_prefix``
(``LINK_``, ``GATEWAY_``...), so one variable name means one thing in the
local stack, in compose and in Kubernetes.
"""

from __future__ import annotations

from typing import Final

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "CLICK_BUFFER_CAPACITY",
    "CLICK_LINGER_MS",
    "ClickPublisherSettings",
    "ConsumerSettings",
    "DatabaseSettings",
    "InternalAuthSettings",
    "KafkaSettings",
    "PruneSettings",
    "RedisSettings",
    "ServiceSettings",
]


class ServiceSettings(BaseSettings):
    """What every HTTP process has: where it listens and how it behaves."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: str = "INFO"
    # One JSON line per request. It costs a measurable share of a redirect
    # (docs/performance.md), so it can be switched off where logs are sampled
    # elsewhere.
    access_log: bool = True
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    # Bound on finishing in-flight requests and flushing buffers at SIGTERM.
    shutdown_timeout_seconds: float = Field(10.0, gt=0)
    # Bind with SO_REUSEPORT, so that a new process can listen beside this one
    # before it stops: a rolling restart on one host with no refused connection.
    reuse_port: bool = False
    # A second port this process listens on alone, where several processes
    # share ``port`` (SO_REUSEPORT): its readiness and its /metrics must be
    # asked of it, not of whichever process the kernel picks.
    own_port: int | None = Field(None, ge=1, le=65535)


class DatabaseSettings(BaseSettings):
    """A service's own Postgres database."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    # No overflow by default: under a load that holds more than the pool, an
    # overflow connection is opened for one checkout and closed at its return,
    # so every request past the pool paid for a new Postgres backend (+0.3 ms
    # of Postgres CPU per link creation, measured). A request beyond the pool
    # waits for a connection instead; one is back within milliseconds.
    db_pool_size: int = Field(20, ge=1)
    db_max_overflow: int = Field(0, ge=0)
    db_statement_timeout_ms: int = Field(5000, ge=1)


class PruneSettings(BaseSettings):
    """How often and in what batches a service deletes rows it no longer
    needs (services/chassis/janitor.py)."""

    prune_interval_seconds: float = Field(600.0, gt=0)
    # Rows a batch deletes, each batch its own transaction.
    prune_batch_rows: int = Field(5000, ge=1, le=100_000)


class RedisSettings(BaseSettings):
    """A Redis used as a cache: losing it must cost speed, never correctness."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_seconds: float = Field(0.25, gt=0)
    # After this many consecutive failures Redis is not called for a while
    # (services/chassis/breaker.py): a hung Redis then costs nothing per
    # request instead of a timeout per request.
    redis_breaker_fail_max: int = Field(3, ge=1)
    redis_breaker_reset_seconds: float = Field(5.0, gt=0)


class KafkaSettings(BaseSettings):
    """A Kafka-protocol broker for events."""

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Idempotent producers need a broker that supports them: on for real
    # Kafka (compose, Kubernetes), off for the local tansu broker.
    kafka_enable_idempotence: bool = True
    kafka_request_timeout_ms: int = Field(5000, ge=100)


# The click publisher's defaults, here and in EventPublisher (services/chassis/kafka.py).
CLICK_BUFFER_CAPACITY: Final = 100_000
# How long the first click in the buffer waits for others to leave with it.
# Every record batch sent wakes the broker and each consumer group that
# reads clicks: at 1,000 redirects/s, 5 ms made 200 batches a second and
# cost the machine 0.3-0.4 of a core more than 50 ms (docs/adr/0020).
CLICK_LINGER_MS: Final = 50


class ClickPublisherSettings(KafkaSettings):
    """A process that publishes click events through a buffer (services/chassis/kafka.py)."""

    click_buffer_capacity: int = Field(CLICK_BUFFER_CAPACITY, ge=1)
    click_linger_ms: int = Field(CLICK_LINGER_MS, ge=0, le=1000)


class ConsumerSettings(KafkaSettings):
    """A consumer of batches (services/chassis/consumer.py): how big, how long.

    A batch is one transaction: bigger batches amortise its round trips and
    commit, smaller ones bound the work redone after a crash.
    """

    batch_max_records: int = Field(2000, ge=1, le=5000)
    batch_timeout_ms: int = Field(500, ge=10, le=10_000)
    # A write that takes longer is abandoned and retried: a database that
    # hangs (rather than refuses) must show as an outage, not as silence.
    write_timeout_seconds: float = Field(30.0, gt=0)
    # How long a rebalance waits for the batch in flight to be written and
    # committed before it hands the partitions over anyway.
    rebalance_wait_seconds: float = Field(10.0, gt=0)


class InternalAuthSettings(BaseSettings):
    """The key the gateway signs identities with (services/chassis/identity.py).

    One name for every process (no service prefix): it is one secret shared
    by the gateway and the services. There is no default: a process refuses
    to start without it rather than run with a key everybody knows.
    """

    internal_auth_key: SecretStr = Field(validation_alias="INTERNAL_AUTH_KEY", min_length=16)
