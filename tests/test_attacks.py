"""Attacks that must fail, each tried through the gateway (or around it)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.chassis.identity import GatewaySigner, Identity
from tests.accounts import Account, active_signing_key, api_key, register
from tests.conftest import Infra
from tests.metrics import metric


def claims(account: Account, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": account.user_id,
        "iss": "shortener",
        "aud": "shortener",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    base.update(changes)
    return base


def me(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/api/v1/users/me", headers={"authorization": f"Bearer {token}"})


@pytest.fixture
def account(client: httpx.Client) -> Account:
    return register(client)


def test_a_token_signed_with_the_real_key_is_accepted(
    client: httpx.Client, infra: Infra, account: Account
) -> None:
    # The control for the forgeries below: the same minting, the real key.
    kid, pem = active_signing_key(infra)
    token = jwt.encode(claims(account), pem, algorithm="EdDSA", headers={"kid": kid})
    assert me(client, token).status_code == 200


def test_an_expired_token_is_401(client: httpx.Client, infra: Infra, account: Account) -> None:
    kid, pem = active_signing_key(infra)
    past = int(time.time()) - 3600
    token = jwt.encode(
        claims(account, iat=past, exp=past + 60), pem, algorithm="EdDSA", headers={"kid": kid}
    )
    response = me(client, token)
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


def test_tampered_claims_are_401(client: httpx.Client, account: Account) -> None:
    header, payload, signature = account.access_token.split(".")
    other = register(client)
    forged = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(
            account.user_id.encode(), other.user_id.encode()
        )
    ).decode()
    response = me(client, f"{header}.{forged}.{signature}")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_alg_none_is_401(client: httpx.Client, infra: Infra, account: Account) -> None:
    kid, _ = active_signing_key(infra)

    def part(value: dict[str, Any]) -> str:
        return jwt.utils.base64url_encode(json.dumps(value).encode()).decode()

    token = f"{part({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{part(claims(account))}."
    assert me(client, token).status_code == 401


def test_a_key_not_in_the_jwks_is_401_even_under_a_known_kid(
    client: httpx.Client, infra: Infra, account: Account
) -> None:
    kid, _ = active_signing_key(infra)
    stranger = Ed25519PrivateKey.generate()
    for header_kid in (kid, "made-up-kid"):
        token = jwt.encode(
            claims(account), stranger, algorithm="EdDSA", headers={"kid": header_kid}
        )
        assert me(client, token).status_code == 401


def test_hmac_with_the_public_key_as_secret_is_401(
    client: httpx.Client, infra: Infra, account: Account, user_url: str
) -> None:
    kid, _ = active_signing_key(infra)
    public = httpx.get(f"{user_url}/.well-known/jwks.json").json()["keys"][0]["x"]
    token = jwt.encode(
        claims(account),
        base64.urlsafe_b64decode(public + "=="),
        algorithm="HS256",
        headers={"kid": kid},
    )
    assert me(client, token).status_code == 401


@pytest.mark.parametrize(
    ("aud", "iss"), [("someone-else", "shortener"), ("shortener", "someone-else")]
)
def test_a_token_for_another_audience_or_issuer_is_401(
    client: httpx.Client, infra: Infra, account: Account, aud: str, iss: str
) -> None:
    kid, pem = active_signing_key(infra)
    token = jwt.encode(
        claims(account, aud=aud, iss=iss), pem, algorithm="EdDSA", headers={"kid": kid}
    )
    assert me(client, token).status_code == 401


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not.a.jwt", "Token x"])
def test_malformed_authorization_is_401(client: httpx.Client, header: str) -> None:
    response = client.get("/api/v1/users/me", headers={"authorization": header})
    assert response.status_code == 401


def test_a_service_port_refuses_requests_that_skip_the_gateway(
    link_url: str, user_url: str
) -> None:
    for base, path in ((link_url, "/api/v1/links"), (user_url, "/api/v1/users/me")):
        refused = {"method": "GET", "route": "unmatched", "status": "401"}
        before = metric(base, "http_requests_total", **refused)
        response = httpx.get(base + path, headers={"x-request-id": "skipped-the-gateway"})
        assert response.status_code == 401
        assert response.json()["code"] == "gateway_required"
        # Refused inside the request middleware: counted and traceable like any request.
        assert response.headers["x-request-id"] == "skipped-the-gateway"
        assert metric(base, "http_requests_total", **refused) == before + 1
    # Health and metrics stay open for the platform.
    assert httpx.get(f"{link_url}/readyz").status_code == 200


def test_identity_headers_signed_with_another_key_or_for_another_path_are_refused(
    link_url: str, account: Account
) -> None:
    who = Identity(account.user_id, "jwt", "127.0.0.1")
    forged = GatewaySigner(b"not-the-internal-key-at-all").headers("GET", b"/api/v1/links", who)
    assert httpx.get(f"{link_url}/api/v1/links", headers=dict(forged)).status_code == 401


def test_a_client_cannot_claim_an_identity_through_the_gateway(
    client: httpx.Client, account: Account
) -> None:
    spoofed = {"x-auth-user": account.user_id, "x-auth-method": "jwt"}
    response = client.get("/api/v1/links", headers=spoofed)
    assert response.status_code == 401


def test_injection_looking_text_is_stored_and_returned_verbatim(client: httpx.Client) -> None:
    password = "x' OR '1'='1'; DROP TABLE users;--"
    account = register(client, password=password)
    name = '\'); DELETE FROM api_keys;-- "quoted" <b>'
    key = api_key(client, account, name=name)
    assert key["name"] == name
    listed = client.get("/api/v1/api-keys", headers=account.bearer).json()
    assert listed[0]["name"] == name
    email = f"o'brien-{uuid.uuid4().hex[:6]}@example.com"
    created = client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert created.status_code == 201
    assert created.json()["email"] == email


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"email": 1, "password": 2}',
        b'{"email": "a@b.c"}',
        b'{"email": "' + b"a" * 70_000 + b'@example.com", "password": "x"}',
    ],
)
def test_bad_bodies_to_auth_endpoints_are_4xx(client: httpx.Client, body: bytes) -> None:
    for path in ("/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh"):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, (path, response.text)
        assert "code" in response.json()


def test_no_secret_reaches_the_logs(client: httpx.Client, infra: Infra) -> None:
    password = f"log-canary-{uuid.uuid4().hex}"
    account = register(client, password=password)
    key = api_key(client, account)
    client.get("/api/v1/users/me", headers={"x-api-key": key["key"]})
    client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    time.sleep(0.5)  # let the processes flush their log lines
    logs = "".join(p.read_text(errors="replace") for p in infra.workdir.glob("*.log"))
    for secret in (password, key["key"], account.access_token, account.refresh_token):
        assert secret not in logs
