"""Opaque bearer secrets (refresh tokens, API keys): random, and stored only as digests.

A plain SHA-256 is the right digest here, where argon2 is right for
passwords: these secrets are 256 random bits, so there is nothing for a slow
hash to protect against (no dictionary, no brute force short of 2**256
guesses), and a fast, unsalted, deterministic digest is what lets a
presented secret be found through a unique index in one lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

__all__ = ["API_KEY_PREFIX", "digest", "new_api_key", "new_refresh_token"]

# Marks a string as one of our API keys, for the user and for secret scanners.
API_KEY_PREFIX: Final = "sk_"


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    """The SHA-256 digest a secret is stored and looked up by."""
    return hashlib.sha256(secret.encode()).digest()
