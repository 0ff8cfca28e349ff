"""Access tokens, their signing keys and the refresh-token sessions behind them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from infra.devstack.processes import run_once
from services.chassis.db import asyncpg_url, session_scope
from services.user.keys import ensure_active_key, rotate_key
from services.user.repository import SigningKeyRepository
from tests import user_client
from tests.user_client import UserService, login, new_email, problem, register, verified_claims

users = user_client.users


# Signing keys


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
