"""Alembic environment of the webhooks service."""

from services.chassis.migrations import run_env
from services.webhooks.models import Endpoint

run_env(Endpoint.metadata)
