"""The webhooks API through the gateway: owner only, problems for bad input.

Endpoints are made by real users (JWT or API key) through the session's
gateway; a test event goes out to a receiver on 127.0.0.1 and verifies with
the ``standardwebhooks`` library, as a receiver's code would.
"""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from tests.accounts import api_key, register
from tests.webhook_receiver import receiver
from tests.webhooks_helpers import create_endpoint, wait_for

pytestmark = pytest.mark.usefixtures("webhooks_url")


def test_an_endpoint_is_created_listed_changed_and_deleted_by_its_owner(
    client: httpx.Client,
) -> None:
    owner = register(client)
    created = create_endpoint(client, owner, "https://example.com/hooks", description="crm")
    assert created["secret"].startswith("whsec_")
    assert created["enabled"] is True
    assert created["codes"] is None
    path = f"/api/v1/webhooks/{created['id']}"

    listed = client.get("/api/v1/webhooks", headers=owner.bearer).json()["items"]
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]

    changed = client.patch(
        path, json={"codes": ["abc"], "enabled": False}, headers=owner.bearer
    ).json()
    assert changed["codes"] == ["abc"]
    assert changed["enabled"] is False
    assert changed["disabled_reason"] == "Disabled by its owner."
    enabled = client.patch(path, json={"enabled": True, "codes": None}, headers=owner.bearer)
    assert enabled.json()["enabled"] is True
    assert enabled.json()["codes"] is None

    assert client.delete(path, headers=owner.bearer).status_code == 204
    assert client.get(path, headers=owner.bearer).status_code == 404


def test_an_api_key_works_and_nobody_else_sees_the_endpoint(client: httpx.Client) -> None:
    owner, other = register(client), register(client)
    key = {"x-api-key": api_key(client, owner)["key"]}
    made = client.post(
        "/api/v1/webhooks",
        json={"url": "https://example.com/h", "event_types": ["link.deleted"]},
        headers=key,
    )
    assert made.status_code == 201, made.text
    path = f"/api/v1/webhooks/{made.json()['id']}"

    assert client.get(path, headers=key).status_code == 200
    for method in ("GET", "PATCH", "DELETE"):
        answer = client.request(method, path, json={}, headers=other.bearer)
        assert answer.status_code == 404, (method, answer.text)
        assert answer.json()["code"] == "endpoint_not_found"
    assert client.get("/api/v1/webhooks", headers=other.bearer).json()["items"] == []
    anonymous = client.get("/api/v1/webhooks")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://example.com/", "event_types": ["link.clicked"]}, "unsupported_scheme"),
        (
            {"url": "https://u:p@example.com/", "event_types": ["link.clicked"]},
            "credentials_in_url",
        ),
        (
            {"url": "https://exa mple.com/", "event_types": ["link.clicked"]},
            "forbidden_host_code_point",
        ),
        ({"url": "not a url", "event_types": ["link.clicked"]}, "invalid_url"),
        ({"url": "https://example.com/", "event_types": ["link.visited"]}, "validation_failed"),
        ({"url": "https://example.com/", "event_types": []}, "validation_failed"),
        (
            {"url": "https://example.com/", "event_types": ["link.clicked"], "x": 1},
            "validation_failed",
        ),
        (
            {"url": "https://example.com/", "event_types": ["link.clicked"], "codes": ["a/b"]},
            "validation_failed",
        ),
    ],
)
def test_bad_input_is_a_problem_document_never_a_500(
    client: httpx.Client, body: dict[str, object], code: str
) -> None:
    owner = register(client)
    response = client.post("/api/v1/webhooks", json=body, headers=owner.bearer)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_unknown_ids_and_cursors_are_404_and_422(client: httpx.Client) -> None:
    owner = register(client)
    endpoint = create_endpoint(client, owner, "https://example.com/h")
    base = f"/api/v1/webhooks/{endpoint['id']}"
    missing = client.get(f"/api/v1/webhooks/{uuid.uuid4()}", headers=owner.bearer)
    assert missing.json()["code"] == "endpoint_not_found"
    not_an_id = client.get("/api/v1/webhooks/nope", headers=owner.bearer)
    assert not_an_id.status_code == 422
    delivery = client.get(f"{base}/deliveries/msg_nope", headers=owner.bearer)
    assert delivery.status_code == 404
    assert delivery.json()["code"] == "delivery_not_found"
    cursor = client.get(f"{base}/deliveries", params={"cursor": "x"}, headers=owner.bearer)
    assert cursor.status_code == 422
    assert cursor.json()["code"] == "invalid_cursor"
    since = client.post(f"{base}/redeliver", json={"since": "yesterday"}, headers=owner.bearer)
    assert since.status_code == 422


def test_a_test_event_arrives_signed_and_its_attempt_is_logged(client: httpx.Client) -> None:
    owner = register(client)
    with receiver() as hooks:
        endpoint = create_endpoint(client, owner, hooks.url)
        base = f"/api/v1/webhooks/{endpoint['id']}"
        sent = client.post(f"{base}/test", headers=owner.bearer)
        assert sent.status_code == 202, sent.text
        got = wait_for(hooks.received, lambda r: len(r) >= 1)
    assert len(got) == 1
    payload = Webhook(endpoint["secret"]).verify(got[0].body, got[0].headers)
    assert payload["type"] == "webhook.test"
    assert payload["data"]["endpoint_id"] == endpoint["id"]
    assert got[0].headers["webhook-id"] == sent.json()["id"]

    def log() -> list[dict[str, object]]:
        items: list[dict[str, object]] = client.get(
            f"{base}/deliveries", headers=owner.bearer
        ).json()["items"]
        return items

    items = wait_for(log, lambda i: bool(i) and i[0]["state"] == "delivered")
    assert items[0]["id"] == sent.json()["id"]
    attempts = items[0]["attempts"]
    assert isinstance(attempts, list)
    assert attempts[0]["outcome"] == "delivered"
    assert attempts[0]["status"] == 200
    assert attempts[0]["excerpt"] == "ok"
    assert orjson.loads(got[0].body)["timestamp"]
