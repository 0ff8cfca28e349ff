"""Visit limits: a link may answer 410 after a number of redirects.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Both columns are cheap to add to a big table: a null column and a
    # constant default change only the catalogue in Postgres 11 and later.
    op.add_column("links", sa.Column("max_visits", sa.BigInteger(), nullable=True))
    op.add_column("links", sa.Column("visits", sa.BigInteger(), server_default="0", nullable=False))
    op.create_check_constraint(
        op.f("ck_links_max_visits_positive"), "links", "max_visits IS NULL OR max_visits > 0"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_links_max_visits_positive"), "links", type_="check")
    op.drop_column("links", "visits")
    op.drop_column("links", "max_visits")
