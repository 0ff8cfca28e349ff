"""HTTP endpoints of the user service: thin, no SQL, no rules."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Response, status

from services.chassis.errors import PROBLEM_JSON
from services.user.dependencies import (
    ApiKeyServiceDep,
    CurrentUser,
    InteractiveUser,
    UserServiceDep,
)
from services.user.models import ApiKey
from services.user.schemas import (
    AccessGrant,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ApiKeyOwner,
    ApiKeyPresented,
    Credentials,
    Jwks,
    RefreshRequest,
    UserOut,
)

__all__ = ["JWKS_PATH", "router"]

JWKS_PATH: Final = "/.well-known/jwks.json"
# Verifiers may keep the key set this long; a new key is seen within it.
JWKS_MAX_AGE_SECONDS: Final = 60

router = APIRouter()

_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}
_NO_STORE: Final = {"cache-control": "no-store"}  # RFC 6749 5.1: token responses


def _key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut.model_validate(key, from_attributes=True)


@router.post(
    "/api/v1/auth/register",
    status_code=status.HTTP_201_CREATED,
    tags=["auth"],
    responses={409: _PROBLEM, 422: _PROBLEM},
)
async def register(data: Credentials, users: UserServiceDep) -> UserOut:
    """Create an account with an email address and a password."""
    return UserOut.model_validate(await users.register(data), from_attributes=True)


@router.post("/api/v1/auth/login", tags=["auth"], responses={401: _PROBLEM, 422: _PROBLEM})
async def login(data: Credentials, users: UserServiceDep, response: Response) -> AccessGrant:
    """Exchange credentials for an access token and a refresh token."""
    response.headers.update(_NO_STORE)
    return await users.login(data)


@router.post("/api/v1/auth/refresh", tags=["auth"], responses={401: _PROBLEM, 422: _PROBLEM})
async def refresh(data: RefreshRequest, users: UserServiceDep, response: Response) -> AccessGrant:
    """Exchange a refresh token (once) for a new access token and refresh token."""
    response.headers.update(_NO_STORE)
    return await users.refresh(data.refresh_token)


@router.post("/api/v1/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
async def logout(data: RefreshRequest, users: UserServiceDep) -> None:
    """End the session the refresh token belongs to."""
    await users.logout(data.refresh_token)


@router.get("/api/v1/users/me", tags=["users"], responses={401: _PROBLEM})
async def me(user_id: CurrentUser, users: UserServiceDep) -> UserOut:
    """The caller's account."""
    return UserOut.model_validate(await users.get(user_id), from_attributes=True)


@router.post(
    "/api/v1/api-keys",
    status_code=status.HTTP_201_CREATED,
    tags=["api-keys"],
    responses={401: _PROBLEM, 403: _PROBLEM, 409: _PROBLEM, 422: _PROBLEM},
)
async def create_api_key(
    data: ApiKeyCreate, user_id: InteractiveUser, api_keys: ApiKeyServiceDep, response: Response
) -> ApiKeyCreated:
    """Create an API key; the key is in this response and nowhere else, ever."""
    response.headers.update(_NO_STORE)
    new = await api_keys.create(user_id, data.name)
    record = new.record
    return ApiKeyCreated(
        id=record.id,
        name=record.name,
        prefix=record.prefix,
        key=new.key,
        created_at=record.created_at,
    )


@router.get("/api/v1/api-keys", tags=["api-keys"], responses={401: _PROBLEM, 403: _PROBLEM})
async def list_api_keys(user_id: InteractiveUser, api_keys: ApiKeyServiceDep) -> list[ApiKeyOut]:
    """The caller's API keys, revoked ones included, newest first."""
    return [_key_out(key) for key in await api_keys.list_for(user_id)]


@router.delete(
    "/api/v1/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["api-keys"],
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM},
)
async def revoke_api_key(key_id: str, user_id: InteractiveUser, api_keys: ApiKeyServiceDep) -> None:
    """Revoke one of the caller's API keys; requests with it fail from now on."""
    await api_keys.revoke(user_id, key_id)


@router.post(
    "/internal/v1/api-keys/verify",
    tags=["internal"],
    responses={401: _PROBLEM, 422: _PROBLEM},
)
async def verify_api_key(data: ApiKeyPresented, api_keys: ApiKeyServiceDep) -> ApiKeyOwner:
    """For the gateway: whose active key this is."""
    key = await api_keys.verify(data.key)
    return ApiKeyOwner(user_id=key.user_id, key_id=key.id)


@router.get(JWKS_PATH, tags=["auth"])
async def jwks(users: UserServiceDep, response: Response) -> Jwks:
    """The public keys that verify access tokens (RFC 7517), for the gateway."""
    response.headers["cache-control"] = f"public, max-age={JWKS_MAX_AGE_SECONDS}"
    return Jwks.model_validate({"keys": await users.jwks()})
