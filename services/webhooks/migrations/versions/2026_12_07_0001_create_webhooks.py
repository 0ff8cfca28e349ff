"""Create endpoints, deliveries and their attempts, link owners and parked clicks.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The DDL SQLAlchemy emits for services/webhooks/models.py at this revision,
# frozen here: a migration must not change when the models do.
_CREATE = (
    """
    CREATE TABLE endpoints (
        id UUID NOT NULL,
        owner_id UUID NOT NULL,
        url VARCHAR(2048) NOT NULL,
        description VARCHAR(200) DEFAULT '' NOT NULL,
        event_types VARCHAR(32)[] NOT NULL,
        codes VARCHAR(64)[],
        secret VARCHAR(100) NOT NULL,
        previous_secret VARCHAR(100),
        previous_secret_expires_at TIMESTAMP WITH TIME ZONE,
        enabled BOOLEAN DEFAULT true NOT NULL,
        disabled_reason VARCHAR(300),
        disabled_at TIMESTAMP WITH TIME ZONE,
        failing_since TIMESTAMP WITH TIME ZONE,
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_endpoints PRIMARY KEY (id)
    )
    """,
    """
    CREATE INDEX ix_endpoints_owner_id ON endpoints (owner_id, created_at)
    """,
    """
    CREATE TABLE link_owners (
        code VARCHAR(64) NOT NULL,
        owner_id UUID,
        changed_at TIMESTAMP WITH TIME ZONE NOT NULL,
        CONSTRAINT pk_link_owners PRIMARY KEY (code)
    )
    """,
    """
    CREATE TABLE parked_clicks (
        event_id VARCHAR(64) NOT NULL,
        code VARCHAR(64) NOT NULL,
        data JSONB NOT NULL,
        traceparent VARCHAR(64),
        parked_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        CONSTRAINT pk_parked_clicks PRIMARY KEY (event_id)
    )
    """,
    """
    CREATE INDEX ix_parked_clicks_code ON parked_clicks (code)
    """,
    """
    CREATE TABLE deliveries (
        id UUID NOT NULL,
        endpoint_id UUID NOT NULL,
        event_type VARCHAR(32) NOT NULL,
        body TEXT NOT NULL,
        state VARCHAR(16) DEFAULT 'pending' NOT NULL,
        attempt_count INTEGER DEFAULT '0' NOT NULL,
        next_attempt_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        lease_until TIMESTAMP WITH TIME ZONE,
        traceparent VARCHAR(64),
        created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        finished_at TIMESTAMP WITH TIME ZONE,
        CONSTRAINT pk_deliveries PRIMARY KEY (id),
        CONSTRAINT fk_deliveries_endpoint_id_endpoints
            FOREIGN KEY(endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE
    )
    """,
    """
    CREATE INDEX ix_deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending'
    """,
    """
    CREATE INDEX ix_deliveries_endpoint_id ON deliveries (endpoint_id, created_at)
    """,
    """
    CREATE TABLE attempts (
        id BIGSERIAL NOT NULL,
        delivery_id UUID NOT NULL,
        attempted_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
        outcome VARCHAR(16) NOT NULL,
        status INTEGER,
        latency_seconds FLOAT NOT NULL,
        excerpt TEXT DEFAULT '' NOT NULL,
        error VARCHAR(32),
        CONSTRAINT pk_attempts PRIMARY KEY (id),
        CONSTRAINT fk_attempts_delivery_id_deliveries
            FOREIGN KEY(delivery_id) REFERENCES deliveries (id) ON DELETE CASCADE
    )
    """,
    """
    CREATE INDEX ix_attempts_delivery_id ON attempts (delivery_id)
    """,
    """
    CREATE TABLE delivery_events (
        endpoint_id UUID NOT NULL,
        event_id VARCHAR(64) NOT NULL,
        delivery_id UUID NOT NULL,
        CONSTRAINT pk_delivery_events PRIMARY KEY (endpoint_id, event_id),
        CONSTRAINT fk_delivery_events_endpoint_id_endpoints
            FOREIGN KEY(endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE
    )
    """,
)


def upgrade() -> None:
    for statement in _CREATE:
        op.execute(statement)


def downgrade() -> None:
    for table in [
        "attempts",
        "delivery_events",
        "deliveries",
        "parked_clicks",
        "link_owners",
        "endpoints",
    ]:
        op.drop_table(table)
