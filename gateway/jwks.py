"""The user service's public keys, cached at the gateway.

Tokens are verified locally against these keys: no call per request, and
valid tokens keep working while the user service is down. A token with an
unknown ``kid`` (a key rotated in since the last fetch) triggers a refetch.
Refetches happen at most once per ``min_refetch_seconds`` (a burst of
garbage kids cannot turn the gateway into a JWKS flood), and a request that
arrives inside that window waits for the next fetch rather than failing, so
the first tokens of a freshly rotated key verify too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWKError

__all__ = ["JwksCache"]

log = logging.getLogger(__name__)


class KeysUnavailable(Exception):
    """A token's key is unknown and the user service cannot be asked: the
    token may well be valid, so the answer is 503, not 401."""


class JwksCache:
    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        *,
        max_age_seconds: float = 300.0,
        min_refetch_seconds: float = 1.0,
    ) -> None:
        self.client = client
        self.url = url
        self.max_age = max_age_seconds
        self.min_refetch = min_refetch_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._tried_at = float("-inf")
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self.reachable = True  # the last fetch's outcome

    def prefetch(self) -> None:
        """Fetch in the background now, so that a gateway started while the
        user service is away already holds the keys once it is back, and one
        started while it is up verifies tokens through a later outage."""
        self._in_background(self._refresh(time.monotonic()))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def key(self, kid: str) -> Any | None:
        """The verification key for ``kid``, refetching when it is unknown or stale."""
        arrived = time.monotonic()
        if kid in self._keys:
            # A known key answers at once; a stale set is refreshed behind it,
            # so tokens keep verifying while the user service is away.
            if arrived - self._fetched_at > self.max_age and not self._lock.locked():
                self._in_background(self._refresh(arrived))
            return self._keys[kid]
        await self._refresh(arrived)
        if kid not in self._keys and not self.reachable:
            raise KeysUnavailable(kid)
        return self._keys.get(kid)

    async def _refresh(self, arrived: float) -> None:
        async with self._lock:
            # One fetch serves everyone who queued behind it.
            if self._tried_at < arrived:
                wait = self._tried_at + self.min_refetch - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._fetch()

    async def _fetch(self) -> None:
        now = self._tried_at = time.monotonic()
        try:
            response = await self.client.get(self.url, timeout=2.0)
            response.raise_for_status()
            keys: dict[str, Any] = {}
            for jwk in response.json().get("keys", []):
                if jwk.get("alg") == "EdDSA" and isinstance(jwk.get("kid"), str):
                    keys[jwk["kid"]] = PyJWK(jwk).key
        except (httpx.HTTPError, ValueError, PyJWKError) as exc:
            # Keep the keys we have: rotation is rare, outages are not.
            log.warning("jwks fetch failed", extra={"error": repr(exc)})
            self.reachable = False
            return
        self._keys, self._fetched_at, self.reachable = keys, now, True
