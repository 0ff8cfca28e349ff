"""Registration, login and the caller's account, on the user service itself."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.chassis.db import asyncpg_url
from services.chassis.identity import GatewaySigner, Identity
from tests import user_client
from tests.conftest import FAST_HASHING
from tests.user_client import (
    PASSWORD,
    SIGNER,
    UserService,
    login,
    new_email,
    problem,
    register,
    verified_claims,
)

users = user_client.users


# Registration


def test_registering_returns_the_account_with_the_address_lower_cased(
    users: UserService,
) -> None:
    email = new_email()
    body = register(users, email.upper())
    assert body["email"] == email
    assert set(body) == {"id", "email", "created_at"}
    uuid.UUID(body["id"])


def test_an_address_registers_once_whatever_its_case(users: UserService) -> None:
    email = new_email()
    register(users, email)
    again = users.call(
        "POST",
        "/api/v1/auth/register",
        json={"email": email.title(), "password": "another fine passphrase"},
    )
    assert problem(again, 409) == "email_taken"


def test_of_concurrent_registrations_of_one_address_exactly_one_succeeds(
    users: UserService,
) -> None:
    body = {"email": new_email(), "password": PASSWORD}

    def attempt(_: int) -> int:
        return users.call("POST", "/api/v1/auth/register", json=body).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(attempt, range(10)))
    assert sorted(statuses) == [201] + [409] * 9


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "not-an-address", "password": PASSWORD}, 422, "invalid_email"),
        ({"email": "someone@localhost", "password": PASSWORD}, 422, "invalid_email"),
        ({"email": "x@example.com", "password": "short"}, 422, "invalid_password"),
        ({"email": "x@example.com", "password": "p" * 257}, 422, "invalid_password"),
        ({"email": "x@example.com", "password": "Password123"}, 422, "invalid_password"),
        ({"email": "longname12@example.com", "password": "LongName12"}, 422, "invalid_password"),
        ({"email": "x@example.com"}, 422, "validation_failed"),
        ({"email": "x@example.com", "password": PASSWORD, "admin": True}, 422, "validation_failed"),
        ({"email": ["x@example.com"], "password": PASSWORD}, 422, "validation_failed"),
    ],
)
def test_bad_registrations_get_a_problem_code(
    users: UserService, body: dict[str, Any], status: int, code: str
) -> None:
    assert problem(users.call("POST", "/api/v1/auth/register", json=body), status) == code


def post_raw(users: UserService, path: str, body: bytes) -> httpx.Response:
    headers = SIGNER.headers("POST", path.encode(), Identity(None, "anonymous", "127.0.0.1"))
    return httpx.post(
        users.url + path,
        content=body,
        headers=[*headers, (b"content-type", b"application/json")],
        trust_env=False,
    )


def test_malformed_json_is_a_400(users: UserService) -> None:
    response = post_raw(users, "/api/v1/auth/register", b'{"email": ')
    assert problem(response, 400) == "malformed_json"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/auth/register", b'{"email": "a@example.com", "password": "\\ud800 long enough"}'),
        ("/api/v1/auth/register", b'{"email": "\\ud800@example.com", "password": "long enough!"}'),
        ("/api/v1/auth/login", b'{"email": "a@example.com", "password": "\\ud800"}'),
        ("/api/v1/auth/refresh", b'{"refresh_token": "\\ud800"}'),
        ("/api/v1/auth/logout", b'{"refresh_token": "\\ud800"}'),
        ("/internal/v1/api-keys/verify", b'{"key": "sk_\\ud800"}'),
    ],
)
def test_text_that_is_not_unicode_is_a_client_error(
    users: UserService, path: str, body: bytes
) -> None:
    # A lone surrogate is valid JSON escaping but no character: it cannot be
    # encoded, so it must be refused before anything hashes it.
    assert problem(post_raw(users, path, body), 422) == "validation_failed"


# Login


def test_login_returns_a_bearer_token_the_jwks_verifies(users: UserService) -> None:
    email = new_email()
    account = register(users, email)
    response = users.call(
        "POST", "/api/v1/auth/login", json={"email": email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    grant = response.json()
    assert grant["token_type"] == "bearer"
    assert grant["expires_in"] == 900
    assert len(grant["refresh_token"]) >= 43
    claims = verified_claims(users, grant["access_token"])
    assert claims["sub"] == account["id"]
    assert claims["exp"] - claims["iat"] == 900
    assert set(claims) == {"sub", "iss", "aud", "iat", "exp", "jti"}
    assert jwt.get_unverified_header(grant["access_token"])["alg"] == "EdDSA"


def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(
    users: UserService,
) -> None:
    email = new_email()
    register(users, email)
    wrong_password = users.call(
        "POST", "/api/v1/auth/login", json={"email": email, "password": PASSWORD + "!"}
    )
    unknown_email = users.call(
        "POST", "/api/v1/auth/login", json={"email": new_email(), "password": PASSWORD}
    )
    assert problem(wrong_password, 401) == problem(unknown_email, 401) == "invalid_credentials"
    malformed = users.call(
        "POST", "/api/v1/auth/login", json={"email": "no address", "password": PASSWORD}
    )
    assert problem(malformed, 401) == "invalid_credentials"
    first, second = (r.json() for r in (wrong_password, unknown_email))
    assert first.pop("request_id") != second.pop("request_id")
    assert first == second


async def test_a_login_upgrades_a_hash_made_with_older_parameters(users: UserService) -> None:
    email = new_email()
    user_id = register(users, email)["id"]
    engine = create_async_engine(asyncpg_url(users.env["USER_DATABASE_URL"]))
    old_hash = PasswordHasher(time_cost=2, memory_cost=32, parallelism=1).hash(PASSWORD)
    statement = text("UPDATE users SET password_hash = :hash WHERE id = :id")
    try:
        async with engine.begin() as connection:
            await connection.execute(statement, {"hash": old_hash, "id": user_id})
        login(users, email)
        async with engine.begin() as connection:
            rows = await connection.execute(
                text("SELECT password_hash FROM users WHERE id = :id"), {"id": user_id}
            )
            new_hash = rows.scalar_one()
    finally:
        await engine.dispose()
    assert new_hash != old_hash
    memory, time = FAST_HASHING["argon2_memory_cost_kib"], FAST_HASHING["argon2_time_cost"]
    assert f"$m={memory},t={time},p=1$" in new_hash  # the service's (test) parameters
    login(users, email)  # and the password still works


# The caller's account


def test_me_is_the_account_the_gateway_vouches_for(users: UserService) -> None:
    account = register(users)
    by_token = users.call("GET", "/api/v1/users/me", user=account["id"])
    by_key = users.call("GET", "/api/v1/users/me", user=account["id"], how="api_key")
    for response in (by_token, by_key):
        assert response.status_code == 200
        assert response.json() == account


def test_me_needs_a_signed_in_caller(users: UserService) -> None:
    response = users.call("GET", "/api/v1/users/me")
    assert problem(response, 401) == "authentication_required"
    assert response.headers["www-authenticate"] == "Bearer"
    unknown = users.call("GET", "/api/v1/users/me", user=str(uuid.uuid4()))
    assert problem(unknown, 401) == "authentication_required"


# Only through the gateway


@pytest.mark.parametrize("path", ["/api/v1/users/me", "/internal/v1/api-keys/verify"])
def test_requests_the_gateway_did_not_sign_are_refused(users: UserService, path: str) -> None:
    account = register(users)
    unsigned = users.call("GET", path, user=account["id"], signer=None)
    impostor = GatewaySigner(b"not-the-internal-key-at-all")
    forged = users.call("GET", path, user=account["id"], signer=impostor)
    headers = SIGNER.headers("GET", b"/api/v1/links", Identity(account["id"], "jwt", "1.2.3.4"))
    replayed = httpx.get(users.url + path, headers=headers)
    for response in (unsigned, forged, replayed):
        assert problem(response, 401) == "gateway_required"


def test_probes_answer_without_a_signature(users: UserService) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert httpx.get(users.url + path).status_code == 200, path
