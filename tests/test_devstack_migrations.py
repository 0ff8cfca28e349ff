"""The local stack skips a service's migrations only when its database is at their head."""

from __future__ import annotations

import asyncio

import asyncpg

from infra.devstack.environment import database_url
from infra.devstack.migrations import at_head
from infra.devstack.processes import ensure_database, run_once
from infra.devstack.stack import REPO_ROOT
from tests.conftest import Infra


def _execute(infra: Infra, database: str, sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(database_url(infra.ports, database))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def test_a_database_is_at_head_only_once_migrated_to_it(infra: Infra) -> None:
    name = "link_heads"
    ensure_database(infra.ports.postgres, name, name, name)
    port = infra.ports.postgres
    assert not at_head("services.link", port, name)  # never migrated: no version table
    env = {"LINK_DATABASE_URL": database_url(infra.ports, name), "INTERNAL_AUTH_KEY": "k" * 32}
    run_once(["-m", "services.link", "migrate"], env, cwd=REPO_ROOT)
    assert at_head("services.link", port, name)
    # A database one migration behind (or anywhere else) is migrated again.
    _execute(infra, name, "CREATE TABLE head AS SELECT version_num FROM alembic_version")
    _execute(infra, name, "UPDATE alembic_version SET version_num = '0002'")
    assert not at_head("services.link", port, name)
    _execute(infra, name, "UPDATE alembic_version SET version_num = (SELECT * FROM head)")
    assert at_head("services.link", port, name)
    # The heads are the service's own: another service's are not this one's.
    assert not at_head("services.user", port, name)
