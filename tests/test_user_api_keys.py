"""API keys: made by a signed-in user, shown once, verified for the gateway."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests import user_client
from tests.user_client import UserService, problem, register

users = user_client.users


def create_key(users: UserService, user: str, name: str = "ci") -> dict[str, Any]:
    response = users.call("POST", "/api/v1/api-keys", user=user, json={"name": name})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def verify_key(users: UserService, key: str) -> httpx.Response:
    return users.call("POST", "/internal/v1/api-keys/verify", json={"key": key})


def list_keys(users: UserService, user: str) -> list[dict[str, Any]]:
    response = users.call("GET", "/api/v1/api-keys", user=user)
    assert response.status_code == 200
    keys: list[dict[str, Any]] = response.json()
    return keys


def test_an_api_key_is_shown_once_and_verifies_to_its_owner(users: UserService) -> None:
    owner = register(users)["id"]
    created = create_key(users, owner, name="  deploys  ")
    assert set(created) == {"id", "name", "prefix", "key", "created_at"}
    assert created["name"] == "deploys"
    assert created["key"].startswith("sk_")
    assert len(created["key"]) >= 3 + 43
    assert created["prefix"] == created["key"][:10]
    listed = list_keys(users, owner)
    assert [k["id"] for k in listed] == [created["id"]]
    assert set(listed[0]) == {"id", "name", "prefix", "created_at", "last_used_at", "revoked_at"}
    assert listed[0]["last_used_at"] is None
    verified = verify_key(users, created["key"])
    assert verified.status_code == 200
    assert verified.json() == {"user_id": owner, "key_id": created["id"]}
    first_use = list_keys(users, owner)[0]["last_used_at"]
    assert first_use is not None
    # Within the minute a use is not written again (one write per minute per key).
    assert verify_key(users, created["key"]).status_code == 200
    assert list_keys(users, owner)[0]["last_used_at"] == first_use


def test_a_revoked_api_key_no_longer_verifies(users: UserService) -> None:
    owner = register(users)["id"]
    created = create_key(users, owner)
    path = f"/api/v1/api-keys/{created['id']}"
    for _ in range(2):  # revoking twice is fine
        assert users.call("DELETE", path, user=owner).status_code == 204
    assert problem(verify_key(users, created["key"]), 401) == "invalid_api_key"
    assert list_keys(users, owner)[0]["revoked_at"] is not None


@pytest.mark.parametrize("key", ["sk_" + "A" * 43, "not-a-key", ""])
def test_an_unknown_api_key_does_not_verify(users: UserService, key: str) -> None:
    assert problem(verify_key(users, key), 401) == "invalid_api_key"


def test_api_keys_are_private_to_their_owner(users: UserService) -> None:
    owner, other = register(users)["id"], register(users)["id"]
    created = create_key(users, owner)
    assert list_keys(users, other) == []
    for key_id in (created["id"], str(uuid.uuid4()), "not-a-uuid"):
        response = users.call("DELETE", f"/api/v1/api-keys/{key_id}", user=other)
        assert problem(response, 404) == "api_key_not_found"
    assert verify_key(users, created["key"]).status_code == 200


def test_api_keys_are_managed_only_after_signing_in(users: UserService) -> None:
    owner = register(users)["id"]
    anonymous = users.call("POST", "/api/v1/api-keys", json={"name": "x"})
    assert problem(anonymous, 401) == "authentication_required"
    # A leaked key must not be able to mint its own successors.
    with_key = users.call("POST", "/api/v1/api-keys", user=owner, how="api_key", json={"name": "x"})
    assert problem(with_key, 403) == "interactive_login_required"
    for name in ("", "   ", "n" * 101):
        response = users.call("POST", "/api/v1/api-keys", user=owner, json={"name": name})
        assert problem(response, 422) == "validation_failed"


def test_a_user_has_at_most_twenty_active_api_keys(users: UserService) -> None:
    owner = register(users)["id"]
    keys = [create_key(users, owner, name=f"k{i}") for i in range(20)]
    over = users.call("POST", "/api/v1/api-keys", user=owner, json={"name": "one more"})
    assert problem(over, 409) == "too_many_api_keys"
    users.call("DELETE", f"/api/v1/api-keys/{keys[0]['id']}", user=owner)
    create_key(users, owner, name="replacement")
