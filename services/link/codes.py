"""Short codes: random base62 for generated links, a checked charset for aliases."""

from __future__ import annotations

import re
import secrets
import string
from typing import Final

__all__ = [
    "ALIAS_PATTERN",
    "ALPHABET",
    "CODE_PATTERN",
    "CODE_RE",
    "RESERVED",
    "alias_problem",
    "generate_code",
]

ALPHABET: Final = string.digits + string.ascii_letters
# Anything that can be a code: generated codes and aliases. The gateway uses
# it to answer 404 to obvious junk without a hop.
CODE_PATTERN: Final = r"[A-Za-z0-9_-]{1,64}"
CODE_RE: Final = re.compile(CODE_PATTERN)
ALIAS_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,63}")

# Paths the gateway serves itself or may serve one day; an alias must never
# shadow them. Compared case-insensitively.
RESERVED: Final = frozenset(
    {
        "api",
        "admin",
        "assets",
        "auth",
        "docs",
        "favicon.ico",
        "graphql",
        "healthz",
        "help",
        "links",
        "login",
        "logout",
        "metrics",
        "openapi",
        "openapi.json",
        "readyz",
        "redoc",
        "register",
        "robots.txt",
        "signup",
        "static",
        "stats",
        "status",
        "user",
        "users",
        "www",
    }
)


def generate_code(length: int) -> str:
    """A uniformly random base62 code (``secrets``: codes must not be guessable in sequence)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def alias_problem(alias: str) -> str | None:
    """Why ``alias`` cannot be used, or None when it can."""
    if not ALIAS_PATTERN.fullmatch(alias):
        return (
            "An alias is 3 to 64 characters of letters, digits, '-' and '_', "
            "starting with a letter or digit."
        )
    if alias.lower() in RESERVED:
        return f"'{alias}' is reserved."
    return None
