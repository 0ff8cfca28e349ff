"""Stored targets become what the URL Standard makes of them (docs/links-urls.md).

Targets were checked by hand before: some are written differently by the
standard (``http://example.com`` is ``http://example.com/``), some are not
URLs a browser can open (``http://a<b/``, ``http://192.168.0.257``). The
first are rewritten to their ``href``; the second are deleted (their
redirect answers 404, as any deleted link's, and their code is never given
out again). Nothing is lost: every row changed is kept in
``link_url_changes`` with the target it had, and the reason for a refusal;
the downgrade puts them back.

The rules are those of ``services.chassis.urls`` when the migration runs: it is
one pass of today's rules over yesterday's rows. Links to the shortener's
own host were refused before too, so the rows carry none to find. Cached
entries of the rows changed are not read again: the cache key's version
changed with this revision (services/link/cache.py).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from services.chassis.url_errors import InvalidUrl
from services.chassis.urls import normalize_url

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHANGES = sa.table(
    "link_url_changes",
    sa.column("link_id", sa.BigInteger),
    sa.column("old_url", sa.Text),
    sa.column("new_url", sa.Text),
    sa.column("refusal", sa.Text),
)


def upgrade() -> None:
    op.create_table(
        "link_url_changes",
        sa.Column("link_id", sa.BigInteger(), primary_key=True),
        sa.Column("old_url", sa.Text(), nullable=False),
        # The canonical href it was rewritten to; null when it was refused.
        sa.Column("new_url", sa.Text(), nullable=True),
        # The refusal's problem code (invalid_host...); null when rewritten.
        sa.Column("refusal", sa.Text(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.CheckConstraint("(new_url IS NULL) <> (refusal IS NULL)", name="rewritten_or_refused"),
    )
    connection = op.get_bind()
    # Streamed in batches (a server-side cursor): the table may be big.
    query = sa.text("SELECT id, url FROM links WHERE deleted_at IS NULL")
    rows = connection.execute(query.execution_options(yield_per=10_000))
    changes = [change for link_id, url in rows if (change := _change(link_id, url))]
    if not changes:
        return
    op.bulk_insert(_CHANGES, changes)
    # Both in one statement each, from the table just written: the table is
    # the record of what changed, and the only source of the change.
    op.execute(
        "UPDATE links SET url = c.new_url FROM link_url_changes c"
        " WHERE links.id = c.link_id AND c.new_url IS NOT NULL"
    )
    op.execute(
        "UPDATE links SET deleted_at = c.changed_at FROM link_url_changes c"
        " WHERE links.id = c.link_id AND c.refusal IS NOT NULL"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE links SET url = c.old_url,"
        " deleted_at = CASE WHEN c.refusal IS NULL THEN links.deleted_at END"
        " FROM link_url_changes c WHERE links.id = c.link_id"
    )
    op.drop_table("link_url_changes")


def _change(link_id: int, url: str) -> dict[str, object] | None:
    """The row of ``link_url_changes`` for a stored target, or None if it stays."""
    try:
        href = normalize_url(url)
    except InvalidUrl as refused:
        return {"link_id": link_id, "old_url": url, "new_url": None, "refusal": refused.code}
    if href == url:
        return None
    return {"link_id": link_id, "old_url": url, "new_url": href, "refusal": None}
