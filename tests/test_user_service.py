"""The user service on its own, called with the headers the gateway signs.

Each request carries exactly what the gateway will send: the caller's
identity signed with the internal key. The service runs as a real process on
a real Postgres, like every other service in these tests.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import jwt
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from infra.devstack.processes import ensure_database, free_port, run_once, start_python
from services.chassis.db import asyncpg_url, session_scope
from services.chassis.identity import GatewaySigner, Identity
from services.user.keys import ensure_active_key, rotate_key
from services.user.repository import SigningKeyRepository
from tests.conftest import Infra

INTERNAL_KEY = b"user-service-tests-internal-key"
SIGNER = GatewaySigner(INTERNAL_KEY)
ISSUER = AUDIENCE = "shortener"


@dataclass(frozen=True)
class UserService:
    url: str
    env: dict[str, str]

    def call(
        self,
        method: str,
        path: str,
        *,
        user: str | None = None,
        how: Literal["jwt", "api_key"] = "jwt",
        json: Any = None,
        signer: GatewaySigner | None = SIGNER,
    ) -> httpx.Response:
        """One request as the gateway sends it, for ``user`` (anonymous if None)."""
        identity = Identity(user, how if user else "anonymous", "203.0.113.7")
        headers = signer.headers(method, path.encode(), identity) if signer else []
        with httpx.Client(base_url=self.url, timeout=10, trust_env=False) as http:
            return http.request(method, path, json=json, headers=headers)


@pytest.fixture(scope="module")
def users(infra: Infra) -> Iterator[UserService]:
    ensure_database(infra.ports.postgres, "users", "users", "users")
    # Not a port the session's own processes were promised but may not use yet.
    port = free_port()
    while port in infra.ports.by_name().values():
        port = free_port()
    env = {
        "USER_HOST": "127.0.0.1",
        "USER_PORT": str(port),
        "USER_DATABASE_URL": f"postgresql://users:users@127.0.0.1:{infra.ports.postgres}/users",
        "USER_LOG_LEVEL": "WARNING",
        "INTERNAL_AUTH_KEY": INTERNAL_KEY.decode(),
        # The cheapest argon2id there is: these tests are about behaviour.
        "USER_ARGON2_TIME_COST": "1",
        "USER_ARGON2_MEMORY_COST_KIB": "64",
    }
    run_once(["-m", "services.user", "migrate"], env)
    url = f"http://127.0.0.1:{port}"
    process = start_python(
        f"user-{port}",
        ["-m", "services.user", "serve"],
        env,
        infra.workdir / f"user-{port}.log",
        ready_url=f"{url}/readyz",
    )
    try:
        yield UserService(url, env)
    finally:
        process.stop()


def new_email() -> str:
    return f"u-{uuid.uuid4().hex[:12]}@example.com"


PASSWORD = "a long and unusual passphrase"


def register(users: UserService, email: str | None = None) -> dict[str, Any]:
    response = users.call(
        "POST", "/api/v1/auth/register", json={"email": email or new_email(), "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def login(users: UserService, email: str) -> dict[str, Any]:
    response = users.call("POST", "/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def problem(response: httpx.Response, status: int) -> str:
    """The problem code of an error response, after checking its status and type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    code: str = response.json()["code"]
    return code


def verified_claims(users: UserService, token: str) -> dict[str, Any]:
    """The token's claims, checked the way the gateway will: against the JWKS."""
    keys = jwt.PyJWKSet.from_dict(httpx.get(f"{users.url}/.well-known/jwks.json").json())
    kid = jwt.get_unverified_header(token)["kid"]
    claims: dict[str, Any] = jwt.decode(
        token, keys[kid].key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER
    )
    return claims


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


# Login and tokens


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
    assert "$m=64,t=1,p=1$" in new_hash  # the service's (test) parameters
    login(users, email)  # and the password still works


def test_the_jwks_lists_public_ed25519_keys_and_may_be_cached(users: UserService) -> None:
    response = httpx.get(f"{users.url}/.well-known/jwks.json")  # unsigned: the gateway's fetch
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=60"
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == (
            "OKP",
            "Ed25519",
            "EdDSA",
            "sig",
        )


def test_after_a_key_rotation_old_and_new_tokens_both_verify(users: UserService) -> None:
    email = new_email()
    register(users, email)
    before = login(users, email)["access_token"]
    run_once(["-m", "services.user", "rotate-key"], users.env)
    after = login(users, email)["access_token"]
    old_kid = jwt.get_unverified_header(before)["kid"]
    new_kid = jwt.get_unverified_header(after)["kid"]
    assert old_kid != new_kid
    published = [k["kid"] for k in httpx.get(f"{users.url}/.well-known/jwks.json").json()["keys"]]
    assert published[0] == new_kid  # newest first
    assert old_kid in published
    assert verified_claims(users, before)["sub"] == verified_claims(users, after)["sub"]


async def test_processes_racing_for_the_first_key_or_a_rotation_agree_on_one(
    users: UserService,
) -> None:
    engine = create_async_engine(asyncpg_url(users.env["USER_DATABASE_URL"]))
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def in_transaction(work: Callable[[SigningKeyRepository], Awaitable[str]]) -> str:
        async with session_scope(sessions) as session:
            return await work(SigningKeyRepository(session))

    async def first_key(keys: SigningKeyRepository) -> str:
        return (await ensure_active_key(keys)).kid

    async def rotation(keys: SigningKeyRepository) -> str:
        return await rotate_key(keys, access_token_ttl_seconds=900)

    async def retire_all(keys: SigningKeyRepository) -> str:
        await keys.retire_active(datetime.now(UTC))
        return ""

    async def active(keys: SigningKeyRepository) -> str:
        key = await keys.active()
        return key.kid if key else ""

    try:
        # As on a fresh database: no active key, five replicas starting.
        await in_transaction(retire_all)
        created = await asyncio.gather(*(in_transaction(first_key) for _ in range(5)))
        assert len(set(created)) == 1
        rotated = await asyncio.gather(*(in_transaction(rotation) for _ in range(3)))
        assert len(set(rotated)) == 3  # each rotation retired the one before
        assert await in_transaction(active) in rotated
    finally:
        await engine.dispose()


# Refresh tokens


def refresh(users: UserService, token: str) -> httpx.Response:
    return users.call("POST", "/api/v1/auth/refresh", json={"refresh_token": token})


def test_a_refresh_token_is_exchanged_once_for_a_new_pair(users: UserService) -> None:
    email = new_email()
    account = register(users, email)
    first = login(users, email)
    response = refresh(users, first["refresh_token"])
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert verified_claims(users, second["access_token"])["sub"] == account["id"]
    assert refresh(users, second["refresh_token"]).status_code == 200


def test_reusing_a_refresh_token_revokes_the_whole_session(users: UserService) -> None:
    email = new_email()
    register(users, email)
    stolen = login(users, email)["refresh_token"]
    current = refresh(users, stolen).json()["refresh_token"]
    assert problem(refresh(users, stolen), 401) == "refresh_token_reused"
    # The legitimate chain is dead too: the service cannot tell who is who.
    assert problem(refresh(users, current), 401) == "invalid_refresh_token"
    # Other sessions of the same user are untouched.
    assert refresh(users, login(users, email)["refresh_token"]).status_code == 200


def test_of_concurrent_refreshes_with_one_token_exactly_one_wins(users: UserService) -> None:
    email = new_email()
    register(users, email)
    token = login(users, email)["refresh_token"]
    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(lambda _: refresh(users, token), range(5)))
    (winner,) = [r for r in responses if r.status_code == 200]
    # The first loser sees a spent token and revokes the family; any later
    # one finds it revoked already.
    losers = [problem(r, 401) for r in responses if r is not winner]
    assert "refresh_token_reused" in losers
    assert set(losers) <= {"refresh_token_reused", "invalid_refresh_token"}
    # The reuse revoked what the winner was given, too.
    assert problem(refresh(users, winner.json()["refresh_token"]), 401) == "invalid_refresh_token"


@pytest.mark.parametrize("token", ["", "x" * 43, "not even close"])
def test_an_unknown_refresh_token_is_invalid(users: UserService, token: str) -> None:
    assert problem(refresh(users, token), 401) == "invalid_refresh_token"


def test_logout_ends_the_session_and_can_be_repeated(users: UserService) -> None:
    email = new_email()
    register(users, email)
    token = login(users, email)["refresh_token"]
    for _ in range(2):
        response = users.call("POST", "/api/v1/auth/logout", json={"refresh_token": token})
        assert response.status_code == 204
        assert response.content == b""
    assert problem(refresh(users, token), 401) == "invalid_refresh_token"


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


# API keys


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
