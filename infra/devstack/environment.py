"""What each process of the local stack is told: its ports, and its settings.

The settings use the names compose and Kubernetes use too
(tests/test_deploy_static.py holds the three to the same names).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from infra.devstack.processes import LOCALHOST, DevstackError, free_port

__all__ = [
    "INTERNAL_AUTH_KEY",
    "IP_HASH_KEY",
    "Ports",
    "analytics_env",
    "database_url",
    "gateway_env",
    "link_env",
    "user_env",
    "webhooks_env",
]


@dataclass(frozen=True)
class Ports:
    """Every port the stack listens on; the field name is the process name,
    but for the gateway: its replicas share ``gateway`` and each has its own."""

    postgres: int = 55432  # beside, not on, a system Postgres (5432) and Redis (6379)
    redis: int = 56379
    broker: int = 59092
    gateway: int = 8000  # shared by the gateway's replicas (SO_REUSEPORT)
    link: int = 8001
    user: int = 8002
    analytics: int = 8003
    webhooks: int = 8004
    prometheus: int = 59090  # beside, not on, a system Prometheus (9090)
    # Each gateway replica's own port, for what must reach that one process:
    # its readiness, its /metrics (GATEWAY_OWN_PORT).
    gateway_1: int = 8010
    gateway_2: int = 8011

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Ports:
        """The defaults, each overridable by ``DEVSTACK_<NAME>_PORT``."""
        chosen: dict[str, int] = {}
        for field in fields(cls):
            variable = f"DEVSTACK_{field.name.upper()}_PORT"
            try:
                chosen[field.name] = int(environ.get(variable, str(field.default)))
            except ValueError:
                raise DevstackError(f"{variable} must be a port number") from None
        return cls(**chosen)

    @classmethod
    def free(cls) -> Ports:
        """Distinct ports nobody listens on now, for tests that run beside `make dev`."""
        chosen: set[int] = set()
        while len(chosen) < len(fields(cls)):
            chosen.add(free_port())
        return cls(*sorted(chosen))

    def by_name(self) -> dict[str, int]:
        return asdict(self)


def database_url(ports: Ports, name: str) -> str:
    """Local credentials are the database name three times: nothing here is secret."""
    return f"postgresql://{name}:{name}@{LOCALHOST}:{ports.postgres}/{name}"


# The key the gateway signs identities with. Fixed and public: it guards
# nothing but a local stack on 127.0.0.1. Compose and Kubernetes generate theirs.
INTERNAL_AUTH_KEY = "devstack-local-internal-auth-key"
IP_HASH_KEY = "devstack-local-only"


def link_env(ports: Ports) -> dict[str, str]:
    return {
        "INTERNAL_AUTH_KEY": INTERNAL_AUTH_KEY,
        # Other OTEL_* variables pass through from the shell; tracing stays off
        # unless one of them names an endpoint (docs/observability-tracing.md).
        "OTEL_SERVICE_NAME": "link",
        "LINK_HOST": LOCALHOST,
        "LINK_PORT": str(ports.link),
        "LINK_DATABASE_URL": database_url(ports, "link"),
        "LINK_REDIS_URL": f"redis://{LOCALHOST}:{ports.redis}/0",
        "LINK_KAFKA_BOOTSTRAP_SERVERS": f"{LOCALHOST}:{ports.broker}",
        # tansu answers InitProducerId with UnknownError: an idempotent producer cannot start.
        "LINK_KAFKA_ENABLE_IDEMPOTENCE": "false",
        "LINK_PUBLIC_BASE_URL": f"http://{LOCALHOST}:{ports.gateway}",
        # Fixed, so a visitor keeps one id across restarts, as the kept database expects.
        "LINK_IP_HASH_KEY": IP_HASH_KEY,
    }


def user_env(ports: Ports) -> dict[str, str]:
    return {
        "INTERNAL_AUTH_KEY": INTERNAL_AUTH_KEY,
        "OTEL_SERVICE_NAME": "user",
        "USER_HOST": LOCALHOST,
        "USER_PORT": str(ports.user),
        "USER_DATABASE_URL": database_url(ports, "users"),
    }


def analytics_env(ports: Ports) -> dict[str, str]:
    return {
        "INTERNAL_AUTH_KEY": INTERNAL_AUTH_KEY,
        "OTEL_SERVICE_NAME": "analytics",
        "ANALYTICS_HOST": LOCALHOST,
        "ANALYTICS_PORT": str(ports.analytics),
        "ANALYTICS_DATABASE_URL": database_url(ports, "analytics"),
        # Unique visitors (HyperLogLog); db 0 is the link cache, db 1 rate limits.
        "ANALYTICS_REDIS_URL": f"redis://{LOCALHOST}:{ports.redis}/2",
        "ANALYTICS_KAFKA_BOOTSTRAP_SERVERS": f"{LOCALHOST}:{ports.broker}",
        "ANALYTICS_KAFKA_ENABLE_IDEMPOTENCE": "false",
    }


def webhooks_env(ports: Ports) -> dict[str, str]:
    return {
        "INTERNAL_AUTH_KEY": INTERNAL_AUTH_KEY,
        "OTEL_SERVICE_NAME": "webhooks",
        "WEBHOOKS_HOST": LOCALHOST,
        "WEBHOOKS_PORT": str(ports.webhooks),
        "WEBHOOKS_DATABASE_URL": database_url(ports, "webhooks"),
        "WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": f"{LOCALHOST}:{ports.broker}",
        "WEBHOOKS_KAFKA_ENABLE_IDEMPOTENCE": "false",
        # Receivers on this machine (docs/examples/webhook_receiver.py) are
        # reachable; every other private range stays refused.
        "WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8",
    }


def gateway_env(ports: Ports) -> dict[str, str]:
    return {
        "INTERNAL_AUTH_KEY": INTERNAL_AUTH_KEY,
        "OTEL_SERVICE_NAME": "gateway",
        "GATEWAY_HOST": LOCALHOST,
        "GATEWAY_PORT": str(ports.gateway),
        "GATEWAY_LINK_SERVICE_URL": f"http://{LOCALHOST}:{ports.link}",
        "GATEWAY_USER_SERVICE_URL": f"http://{LOCALHOST}:{ports.user}",
        "GATEWAY_ANALYTICS_SERVICE_URL": f"http://{LOCALHOST}:{ports.analytics}",
        "GATEWAY_WEBHOOKS_SERVICE_URL": f"http://{LOCALHOST}:{ports.webhooks}",
        "GATEWAY_REDIS_URL": f"redis://{LOCALHOST}:{ports.redis}/1",
        # The link service's Redis (LINK_REDIS_URL): its redirect read model.
        "GATEWAY_REDIRECT_READ_MODEL_URL": f"redis://{LOCALHOST}:{ports.redis}/0",
        # A rolling restart starts the new gateway beside the old (supervisor.py).
        "GATEWAY_REUSE_PORT": "true",
        # The gateway publishes the clicks of redirects it replays while the
        # link service is down (gateway/stale.py), hashed with the same key.
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": f"{LOCALHOST}:{ports.broker}",
        "GATEWAY_KAFKA_ENABLE_IDEMPOTENCE": "false",
        "GATEWAY_IP_HASH_KEY": IP_HASH_KEY,
    }
