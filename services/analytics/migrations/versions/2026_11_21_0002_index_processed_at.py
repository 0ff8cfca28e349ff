"""Index processed events by time, for the janitor that deletes old claims.

Built CONCURRENTLY, outside a transaction: on a table that already holds
millions of claims, a plain CREATE INDEX would block the consumer's inserts
for as long as the build takes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_processed_events_processed_at",
            "processed_events",
            ["processed_at"],
            postgresql_concurrently=True,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_processed_events_processed_at",
            table_name="processed_events",
            postgresql_concurrently=True,
            if_exists=True,
        )
