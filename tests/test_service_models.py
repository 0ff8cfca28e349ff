"""Each service's tables are its own: one process may load every service's models.

Each service owns its database (docs/architecture.md), so each has its own
SQLAlchemy metadata. One metadata for all let the link service's ``links``
and analytics' ``links`` collide: a process that loaded both (a migration
runner, a test, a tool) failed at import.
"""

from __future__ import annotations

import importlib

SERVICES = {
    "link": {"links", "outbox"},
    "analytics": {"links", "processed_events", "clicks_hourly", "clicks_daily",
                  "clicks_by_dimension"},
    "user": {"users", "refresh_tokens", "api_keys", "signing_keys"},
    "webhooks": {"endpoints", "link_owners", "parked_clicks", "deliveries", "delivery_events",
                 "attempts"},
}  # fmt: skip


def test_every_services_models_load_in_one_process_each_in_its_own_metadata() -> None:
    modules = {name: importlib.import_module(f"services.{name}.models") for name in SERVICES}
    for name, tables in SERVICES.items():
        assert set(modules[name].Base.metadata.tables) == tables, name
    link, analytics = modules["link"].Base.metadata, modules["analytics"].Base.metadata
    assert link.tables["links"] is not analytics.tables["links"]
    assert "url" in link.tables["links"].c
    assert "url" not in analytics.tables["links"].c


def test_constraint_names_follow_the_shared_convention() -> None:
    outbox = importlib.import_module("services.link.models").Base.metadata.tables["outbox"]
    assert outbox.primary_key.name == "pk_outbox"
