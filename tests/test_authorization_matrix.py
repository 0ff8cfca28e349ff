"""The authorization matrix of docs/authorization.md, one test per cell.

Callers: anonymous, the owner (by token), the owner by API key, another user.
The table below is the documentation's table; change both together.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.accounts import Account, api_key, register

CALLERS = ("anonymous", "owner", "owner_api_key", "other_user")

# endpoint -> expected status per caller, in CALLERS order.
MATRIX: dict[str, tuple[int, int, int, int]] = {
    "POST /api/v1/links": (201, 201, 201, 201),
    "GET /api/v1/links": (401, 200, 200, 200),
    "GET /api/v1/links/{code}": (200, 200, 200, 200),
    "PATCH /api/v1/links/{code}": (401, 200, 200, 403),
    "DELETE /api/v1/links/{code}": (401, 204, 204, 403),
    "GET /{code}": (302, 302, 302, 302),
    "GET /api/v1/users/me": (401, 200, 200, 200),
    # A leaked API key must not be able to mint or list more: keys are
    # managed after signing in (403 interactive_login_required).
    "GET /api/v1/api-keys": (401, 200, 403, 200),
    "POST /api/v1/api-keys": (401, 201, 403, 201),
    "DELETE /api/v1/api-keys/{key_id}": (401, 204, 403, 404),
}


def headers_for(caller: str, owner: Account, other: Account, key: str) -> dict[str, str]:
    return {
        "anonymous": {},
        "owner": owner.bearer,
        "owner_api_key": {"x-api-key": key},
        "other_user": other.bearer,
    }[caller]


BODIES: dict[str, Callable[[], object]] = {
    "POST /api/v1/links": lambda: {"url": "https://example.com/m"},
    "PATCH /api/v1/links/{code}": lambda: {"url": "https://example.com/patched"},
    "POST /api/v1/api-keys": lambda: {"name": "matrix"},
}


@pytest.mark.parametrize("endpoint", MATRIX)
@pytest.mark.parametrize("caller", CALLERS)
def test_matrix_cell(client: httpx.Client, endpoint: str, caller: str) -> None:
    owner, other = register(client), register(client)
    key = api_key(client, owner, name="owner key")["key"]
    code = client.post(
        "/api/v1/links", json={"url": "https://example.com/owned"}, headers=owner.bearer
    ).json()["code"]
    target_key = api_key(client, owner, name="target")["id"]
    method, path = endpoint.split(" ")
    path = path.replace("{code}", code).replace("{key_id}", target_key)
    body = BODIES.get(endpoint)
    response = client.request(
        method,
        path,
        json=body() if body else None,
        headers=headers_for(caller, owner, other, key),
    )
    assert response.status_code == MATRIX[endpoint][CALLERS.index(caller)], response.text
