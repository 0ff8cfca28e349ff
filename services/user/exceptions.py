"""Errors of the user domain, each with its HTTP status and code::

    UnauthorizedError        401 authentication_required (+ WWW-Authenticate)
    ├── InvalidCredentials       invalid_credentials
    ├── InvalidRefreshToken      invalid_refresh_token
    ├── RefreshTokenReused       refresh_token_reused
    └── InvalidApiKey            invalid_api_key
    ForbiddenError           403
    └── InteractiveLoginRequired interactive_login_required
    DomainError
    ├── InvalidEmail         422 invalid_email
    └── InvalidPassword      422 invalid_password
    ConflictError            409
    ├── EmailTaken               email_taken
    └── TooManyApiKeys           too_many_api_keys
    NotFoundError            404
    └── ApiKeyNotFound           api_key_not_found

An anonymous caller where a user is needed gets the chassis's own
``UnauthorizedError`` (``authentication_required``).
"""

from __future__ import annotations

from services.chassis.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
)

__all__ = [
    "ApiKeyNotFound",
    "EmailTaken",
    "InteractiveLoginRequired",
    "InvalidApiKey",
    "InvalidCredentials",
    "InvalidEmail",
    "InvalidPassword",
    "InvalidRefreshToken",
    "RefreshTokenReused",
    "TooManyApiKeys",
]


class InvalidCredentials(UnauthorizedError):
    code = "invalid_credentials"
    title = "Invalid credentials"


class InvalidRefreshToken(UnauthorizedError):
    code = "invalid_refresh_token"
    title = "Invalid refresh token"


class RefreshTokenReused(UnauthorizedError):
    code = "refresh_token_reused"
    title = "Refresh token reused"


class InvalidApiKey(UnauthorizedError):
    code = "invalid_api_key"
    title = "Invalid API key"


class InteractiveLoginRequired(ForbiddenError):
    code = "interactive_login_required"
    title = "Sign in to manage API keys"


class InvalidEmail(DomainError):
    status_code = 422
    code = "invalid_email"
    title = "Invalid email address"


class InvalidPassword(DomainError):
    status_code = 422
    code = "invalid_password"
    title = "Password not accepted"


class EmailTaken(ConflictError):
    code = "email_taken"
    title = "Email already registered"


class TooManyApiKeys(ConflictError):
    code = "too_many_api_keys"
    title = "Too many API keys"


class ApiKeyNotFound(NotFoundError):
    code = "api_key_not_found"
    title = "API key not found"
