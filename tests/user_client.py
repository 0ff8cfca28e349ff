"""The user service on its own, called with the headers the gateway signs.

Each request carries exactly what the gateway will send: the caller's
identity signed with the internal key. The service is the session's own
(``user_url`` in conftest): a real process on a real Postgres, started once.

A test module gets the ``users`` fixture by naming it at module level
(``users = user_client.users``): pytest sees the fixtures a module defines
or holds, and these three modules share no conftest of their own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import jwt
import pytest

from infra.devstack.stack import INTERNAL_AUTH_KEY
from services.chassis.identity import GatewaySigner, Identity
from tests.conftest import FAST_HASHING, Infra, settings_for

__all__ = [
    "PASSWORD",
    "SIGNER",
    "UserService",
    "login",
    "new_email",
    "problem",
    "register",
    "users",
    "verified_claims",
]

# The key the session's services share (service_env sets it for every one).
SIGNER = GatewaySigner(INTERNAL_AUTH_KEY.encode())
ISSUER = AUDIENCE = "shortener"
PASSWORD = "a long and unusual passphrase"


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
def users(infra: Infra, user_url: str) -> UserService:
    """The session's user service, with the settings conftest started it with.

    ``env`` is what its database and its ``rotate-key`` command are reached with.
    """
    return UserService(user_url, settings_for(infra, "user", infra.ports.user, **FAST_HASHING))


def new_email() -> str:
    return f"u-{uuid.uuid4().hex[:12]}@example.com"


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
