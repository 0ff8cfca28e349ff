"""Alembic environment of the analytics service."""

from services.analytics.models import ProcessedEvent
from services.chassis.migrations import run_env

run_env(ProcessedEvent.metadata)
