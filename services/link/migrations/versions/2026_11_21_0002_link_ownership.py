"""Links belong to users; deleted links keep their code.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("links", sa.Column("owner_id", sa.Uuid(), nullable=True))
    op.add_column("links", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_links_owner_id_id", "links", ["owner_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_links_owner_id_id", table_name="links")
    op.drop_column("links", "deleted_at")
    op.drop_column("links", "owner_id")
