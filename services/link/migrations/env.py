"""Alembic environment of the link service."""

from services.chassis.migrations import run_env
from services.link.models import Link

run_env(Link.metadata)
