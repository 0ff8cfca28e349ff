"""Alembic, driven from code: each service keeps its own migrations folder.

``upgrade`` is what ``python -m services.<name> migrate`` runs (locally, as a
compose one-shot job, as a Kubernetes Job); ``run_env`` is the whole body of
each service's ``env.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from services.chassis.db import asyncpg_url

__all__ = ["run_env", "upgrade"]


def upgrade(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``; safe to run again."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", asyncpg_url(database_url))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    command.upgrade(config, revision)


def _migrate(connection: Connection, metadata: MetaData) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(metadata: MetaData) -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_migrate, metadata)
    await engine.dispose()


def run_env(metadata: MetaData) -> None:
    """Run the migrations of the service whose tables are in ``metadata``."""
    if context.is_offline_mode():
        context.configure(
            url=context.config.get_main_option("sqlalchemy.url"), target_metadata=metadata
        )
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_online(metadata))
