"""Accounts, tokens and API keys, used through the gateway."""

from __future__ import annotations

import httpx
import jwt

from infra.devstack.processes import run_once
from tests.accounts import api_key, login, register
from tests.conftest import FAST_HASHING, Infra, settings_for


def test_register_login_and_me(client: httpx.Client) -> None:
    account = register(client)
    me = client.get("/api/v1/users/me", headers=account.bearer)
    assert me.status_code == 200
    assert me.json()["email"] == account.email
    assert me.json()["id"] == account.user_id


def test_me_needs_credentials(client: httpx.Client) -> None:
    response = client.get("/api/v1/users/me")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_required"


def test_a_duplicate_email_is_409(client: httpx.Client) -> None:
    account = register(client)
    again = client.post(
        "/api/v1/auth/register", json={"email": account.email, "password": "another long one"}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"


def test_a_wrong_password_is_401(client: httpx.Client) -> None:
    account = register(client)
    wrong = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": "not the password"}
    )
    unknown = client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "whatever123"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == unknown.json()["code"] == "invalid_credentials"


def test_refresh_rotates_and_a_reused_token_revokes_the_family(client: httpx.Client) -> None:
    account = register(client)
    first = client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert first.status_code == 200
    rotated = first.json()["refresh_token"]
    assert rotated != account.refresh_token
    assert (
        client.get(
            "/api/v1/users/me", headers={"authorization": f"Bearer {first.json()['access_token']}"}
        ).status_code
        == 200
    )
    # The old token again: somebody stole it. Both chains die.
    reused = client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    after = client.post("/api/v1/auth/refresh", json={"refresh_token": rotated})
    assert after.status_code == 401


def test_logout_ends_the_refresh_chain(client: httpx.Client) -> None:
    account = register(client)
    out = client.post("/api/v1/auth/logout", json={"refresh_token": account.refresh_token})
    assert out.status_code == 204
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert again.status_code == 401


def test_api_keys_are_shown_once_listed_by_prefix_and_work_both_ways(
    client: httpx.Client,
) -> None:
    account = register(client)
    key = api_key(client, account, name="ci deploy")
    assert key["key"].startswith("sk_")
    listed = client.get("/api/v1/api-keys", headers=account.bearer).json()
    assert [k["name"] for k in listed] == ["ci deploy"]
    assert "key" not in listed[0]
    assert key["key"].startswith(listed[0]["prefix"])
    for headers in ({"authorization": f"Bearer {key['key']}"}, {"x-api-key": key["key"]}):
        me = client.get("/api/v1/users/me", headers=headers)
        assert me.status_code == 200
        assert me.json()["id"] == account.user_id


def test_a_revoked_api_key_is_401_at_once(client: httpx.Client) -> None:
    account = register(client)
    key = api_key(client, account)
    headers = {"x-api-key": key["key"]}
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200
    revoked = client.delete(f"/api/v1/api-keys/{key['id']}", headers=account.bearer)
    assert revoked.status_code == 204
    response = client.get("/api/v1/users/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


def test_an_unknown_api_key_is_401(client: httpx.Client) -> None:
    response = client.get("/api/v1/users/me", headers={"x-api-key": "sk_" + "x" * 43})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


def test_a_token_keeps_working_across_a_new_login(client: httpx.Client) -> None:
    account = register(client)
    login(client, account.email, account.password)
    assert client.get("/api/v1/users/me", headers=account.bearer).status_code == 200


def test_a_key_rotation_needs_no_restart_and_old_tokens_keep_working(
    client: httpx.Client, infra: Infra
) -> None:
    account = register(client)
    old_kid = jwt.get_unverified_header(account.access_token)["kid"]
    env = settings_for(infra, "user", infra.ports.user, **FAST_HASHING)
    run_once(["-m", "services.user", "rotate-key"], env)
    fresh = login(client, account.email, account.password)["access_token"]
    assert jwt.get_unverified_header(fresh)["kid"] != old_kid
    # The gateway has never seen the new kid: it fetches the JWKS on the spot.
    for token in (fresh, account.access_token):
        me = client.get("/api/v1/users/me", headers={"authorization": f"Bearer {token}"})
        assert me.status_code == 200
