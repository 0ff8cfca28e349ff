"""Accounts and credentials for tests, made through the gateway like a client would."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import asyncpg
import httpx

from tests.conftest import Infra

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    user_id: str
    access_token: str
    refresh_token: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.access_token}"}


def register(http: httpx.Client, password: str = PASSWORD) -> Account:
    """A new user, registered and logged in."""
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    created = http.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert created.status_code == 201, created.text
    tokens = login(http, email, password)
    return Account(
        email, password, created.json()["id"], tokens["access_token"], tokens["refresh_token"]
    )


def login(http: httpx.Client, email: str, password: str) -> dict[str, str]:
    response = http.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


def api_key(http: httpx.Client, account: Account, name: str = "test key") -> dict[str, str]:
    response = http.post("/api/v1/api-keys", json={"name": name}, headers=account.bearer)
    assert response.status_code == 201, response.text
    key: dict[str, str] = response.json()
    return key


def active_signing_key(infra: Infra) -> tuple[str, str]:
    """(kid, private key PEM) of the user service's active signing key."""

    async def read() -> tuple[str, str]:
        url = f"postgresql://users:users@127.0.0.1:{infra.ports.postgres}/users"
        connection = await asyncpg.connect(url)
        try:
            row = await connection.fetchrow(
                "SELECT kid, private_key_pem FROM signing_keys WHERE retired_at IS NULL"
            )
        finally:
            await connection.close()
        assert row is not None
        return row["kid"], row["private_key_pem"]

    return asyncio.run(read())
