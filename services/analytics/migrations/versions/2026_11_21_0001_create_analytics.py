"""Create processed events, the click rollups and the links analytics knows.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _counters(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("clicks", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("bot_clicks", sa.BigInteger(), nullable=False, server_default="0"),
        sa.CheckConstraint(
            "clicks >= 0 AND bot_clicks >= 0", name=f"ck_{table}_counts_not_negative"
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.PrimaryKeyConstraint("event_id", name="pk_processed_events"),
    )
    op.create_table(
        "clicks_hourly",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        *_counters("clicks_hourly"),
        sa.PrimaryKeyConstraint("code", "hour", name="pk_clicks_hourly"),
    )
    op.create_table(
        "clicks_daily",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *_counters("clicks_daily"),
        sa.PrimaryKeyConstraint("code", "day", name="pk_clicks_daily"),
    )
    op.create_table(
        "clicks_by_dimension",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dimension", sa.String(16), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        *_counters("clicks_by_dimension"),
        sa.PrimaryKeyConstraint("code", "day", "dimension", "value", name="pk_clicks_by_dimension"),
        sa.CheckConstraint(
            "dimension IN ('referrer', 'device', 'browser', 'os')",
            name="ck_clicks_by_dimension_dimension",
        ),
    )
    op.create_table(
        "links",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_links"),
    )
    op.create_index(
        "ix_links_owner_id",
        "links",
        ["owner_id"],
        postgresql_where=sa.text("owner_id IS NOT NULL AND deleted_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("links")
    op.drop_table("clicks_by_dimension")
    op.drop_table("clicks_daily")
    op.drop_table("clicks_hourly")
    op.drop_table("processed_events")
