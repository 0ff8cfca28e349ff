"""Index what the janitor deletes: finished deliveries by age, their claims by delivery.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_deliveries_finished_at ON deliveries (finished_at)"
        " WHERE state <> 'pending'"
    )
    op.create_index("ix_delivery_events_delivery_id", "delivery_events", ["delivery_id"])


def downgrade() -> None:
    op.drop_index("ix_delivery_events_delivery_id", "delivery_events")
    op.drop_index("ix_deliveries_finished_at", "deliveries")
