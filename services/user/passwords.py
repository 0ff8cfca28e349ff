"""Passwords: the policy a new one must meet, and argon2id hashing off the event loop.

argon2id is deliberately slow and memory-hard, which is right for secrets a
human chose (low entropy, reused elsewhere) and wrong for the event loop:
every hash and check runs on a small pool of threads of its own, so a burst
of logins queues there instead of stalling other requests or the default
thread pool, and the pool size bounds the memory the hashes hold at once.
"""

from __future__ import annotations

import asyncio
import secrets
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["COMMON_PASSWORDS", "MAX_PASSWORD_LENGTH", "Passwords", "password_problem"]

MAX_PASSWORD_LENGTH: Final = 256

# The most common passwords of public breach corpora that are long enough to
# pass the length rule (shorter ones never get this far). A real deployment
# would check a large list, or Have I Been Pwned's k-anonymity range API.
COMMON_PASSWORDS: Final = frozenset(
    {
        "password",
        "password1",
        "password12",
        "password123",
        "password1234",
        "passw0rd123",
        "p@ssw0rd123",
        "123456789",
        "1234567890",
        "12345678910",
        "0123456789",
        "0987654321",
        "9876543210",
        "1111111111",
        "0000000000",
        "1q2w3e4r5t",
        "1q2w3e4r5t6y",
        "q1w2e3r4t5",
        "qwertyuiop",
        "qwerty1234",
        "qwerty12345",
        "qwerty123456",
        "asdfghjkl1",
        "1qaz2wsx3edc",
        "zaq12wsxcde3",
        "iloveyou12",
        "iloveyou123",
        "abcdefghij",
        "abc1234567",
        "abcd123456",
        "a123456789",
        "letmein123",
        "welcome123",
        "football123",
        "baseball123",
        "princess123",
        "sunshine123",
        "superman123",
        "monkey1234",
        "dragon1234",
        "master1234",
        "trustno1234",
        "changeme123",
        "administrator",
        "admin12345",
        "admin123456",
        "passwordpassword",
    }
)


def password_problem(password: str, *, email: str, min_length: int) -> str | None:
    """Why ``password`` cannot be used, or None when it can.

    No composition rules (NIST SP 800-63B): they make passwords harder to
    remember, not to guess. Length and a blocklist do more.
    """
    if len(password) < min_length:
        return f"A password has at least {min_length} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"A password has at most {MAX_PASSWORD_LENGTH} characters."
    folded = password.casefold()
    if folded in {email.casefold(), email.partition("@")[0].casefold()}:
        return "A password cannot be the email address."
    if folded in COMMON_PASSWORDS:
        return "This password is among the most common ones; choose another."
    return None


class Passwords:
    """argon2id with the configured cost, on a bounded pool of threads."""

    def __init__(
        self, *, time_cost: int, memory_cost_kib: int, parallelism: int, workers: int
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._dummy_hash: str | None = None

    async def start(self) -> None:
        """Hash a throwaway password to check against when a login names no user."""
        self._dummy_hash = await self.hash(secrets.token_urlsafe(16))

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def hash(self, password: str) -> str:
        """The argon2id hash of ``password``, salt and parameters included."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._hasher.hash, _normalized(password))

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches ``password_hash``.

        With no hash (the login named no user) a dummy hash is checked
        instead, so that an unknown email takes as long as a wrong password
        and the answer time does not tell which addresses have accounts.
        """
        if password_hash is None:
            assert self._dummy_hash is not None, "start() was not called"
            password_hash = self._dummy_hash
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, self._matches, password_hash, _normalized(password)
        )

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than today's."""
        return self._hasher.check_needs_rehash(password_hash)

    def _matches(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def _normalized(password: str) -> str:
    # The same password typed on two keyboards can arrive as different code
    # points ("é" composed or not); NFKC makes them one (NIST SP 800-63B).
    return unicodedata.normalize("NFKC", password)
