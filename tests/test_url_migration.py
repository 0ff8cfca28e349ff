"""Migration 0006 on a real Postgres: stored targets become canonical hrefs,
refused ones are deleted, and every change is kept and can be undone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config

from infra.devstack.processes import ensure_database
from infra.devstack.stack import database_url
from services.chassis.db import asyncpg_url
from services.chassis.migrations import upgrade
from tests.conftest import Infra

MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "link" / "migrations"
# What the hand-written validation stored, and what becomes of it.
STORED = {
    "keep": ("https://example.com/a", "https://example.com/a", None),
    "slash": ("http://example.com", "http://example.com/", None),
    "ipv4": ("http://0x7f.1/x", "http://127.0.0.1/x", None),
    "lt": ("http://a<b/", None, "forbidden_host_code_point"),
    "octet": ("http://192.168.0.257", None, "invalid_ipv4"),
    "puny": ("http://a.b.c.xn--pokxncvks", None, "invalid_host"),
}


def query(url: str, sql: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            return list(await connection.fetch(sql))
        finally:
            await connection.close()

    return asyncio.run(run())


def downgrade(url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", asyncpg_url(url))
    command.downgrade(config, revision)


def links(url: str) -> dict[str, tuple[str, bool]]:
    rows = query(url, "SELECT code, url, deleted_at IS NOT NULL AS gone FROM links")
    return {row["code"]: (row["url"], row["gone"]) for row in rows}


def test_stored_targets_are_rewritten_or_refused_and_nothing_is_lost(infra: Infra) -> None:
    ensure_database(infra.ports.postgres, "link_urls", "link_urls", "link_urls")
    url = database_url(infra.ports, "link_urls")
    upgrade(MIGRATIONS, url, "0005")
    values = ", ".join(f"('{code}', '{target}')" for code, (target, _, _) in STORED.items())
    query(url, f"INSERT INTO links (code, url) VALUES {values}")
    before = links(url)

    upgrade(MIGRATIONS, url)

    after = links(url)
    for code, (old, new, refusal) in STORED.items():
        assert after[code] == ((new, False) if refusal is None else (old, True)), code
    changes = query(
        url, "SELECT l.code, c.* FROM link_url_changes c JOIN links l ON l.id = c.link_id"
    )
    assert {row["code"]: (row["old_url"], row["new_url"], row["refusal"]) for row in changes} == {
        code: row for code, row in STORED.items() if code != "keep"
    }

    downgrade(url, "0005")
    assert links(url) == before
