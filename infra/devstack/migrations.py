"""Whether a service's database is at the head of its migrations, asked without running them.

The local stack migrates every database at every start. Running a
service's ``migrate`` command costs a process that imports Python's,
SQLAlchemy's and Alembic's modules and the service's models: about 1.5 s
of CPU each on a 2-core machine, four of them, to find on a warm start
that there is nothing to do. Alembic's own ``ScriptDirectory`` reads the
heads from the migration files, and one query reads the revisions the
database is at; only a database that is not at its heads is migrated.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path

import asyncpg
from alembic.script import ScriptDirectory

from infra.devstack.managed import LOCALHOST

__all__ = ["at_head"]


def at_head(package: str, port: int, database: str) -> bool:
    """True if ``database`` is at every head of ``package``'s ``migrations`` folder."""
    folder = Path(importlib.import_module(package).__path__[0]) / "migrations"
    heads = set(ScriptDirectory(str(folder)).get_heads())
    return asyncio.run(_revisions(port, database)) == heads


async def _revisions(port: int, database: str) -> set[str]:
    """The revisions ``database`` is at: none before its first migration."""
    conn = await asyncpg.connect(host=LOCALHOST, port=port, user="postgres", database=database)
    try:
        if not await conn.fetchval("SELECT to_regclass('public.alembic_version') IS NOT NULL"):
            return set()
        return {row[0] for row in await conn.fetch("SELECT version_num FROM alembic_version")}
    finally:
        await conn.close()
