"""Alembic environment of the user service."""

from services.chassis.migrations import run_env
from services.user.models import User

run_env(User.metadata)
