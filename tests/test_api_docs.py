"""docs/api/ is what the system serves: the OpenAPI documents and the event contracts.

The files are written by ``make api-docs``; these tests fetch the documents
from the session's running gateway and services and fail, naming the file,
when a change to the code was not exported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.apidocs import API_DIR, documents, fetch

REGENERATE = "docs/api/ is stale: run `make api-docs` and commit the result"


@pytest.fixture(scope="module")
def exported(
    gateway_url: str, link_url: str, user_url: str, analytics_url: str, webhooks_url: str
) -> dict[Path, str]:
    served = fetch(
        {
            "gateway": gateway_url,
            "link": link_url,
            "user": user_url,
            "analytics": analytics_url,
            "webhooks": webhooks_url,
        }
    )
    return documents(served)


@pytest.mark.parametrize("name", ["gateway", "link", "user", "analytics", "webhooks"])
def test_openapi_document_matches_what_is_served(exported: dict[Path, str], name: str) -> None:
    path = Path(f"openapi-{name}.json")
    committed = json.loads((API_DIR / path).read_text())
    assert committed == json.loads(exported[path]), f"{path}: {REGENERATE}"


def test_gateway_document_covers_every_upstream_operation(exported: dict[Path, str]) -> None:
    # The merge happens at run time; a document exported while an upstream was
    # down would silently lack its paths. Every public path must be there.
    gateway = json.loads(exported[Path("openapi-gateway.json")])["paths"]
    for name in ("link", "user", "analytics", "webhooks"):
        paths = json.loads(exported[Path(f"openapi-{name}.json")])["paths"]
        public = {p for p in paths if p.startswith("/api/") or p == "/{code}"}
        assert public <= set(gateway), f"{name}: {sorted(public - set(gateway))} not in the gateway"


def test_event_contracts_match_the_code(exported: dict[Path, str]) -> None:
    for path, text in exported.items():
        if path.suffix == ".md" or path.parent.name == "events":
            assert (API_DIR / path).read_text() == text, f"{path}: {REGENERATE}"


def test_event_schemas_pin_their_version() -> None:
    schema = json.loads((API_DIR / "events" / "LinkClicked.v1.schema.json").read_text())
    assert schema["properties"]["schema_version"]["const"] == 1
    assert set(schema["required"]) >= {"event_id", "code", "occurred_at"}
