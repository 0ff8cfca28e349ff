"""The user service's public keys, cached at the gateway.

Tokens are verified locally against these keys: no call per request, and
valid tokens keep working while the user service is down. A token with an
unknown ``kid`` (a key rotated in since the last fetch) triggers a refetch,
at most once per ``min_refetch_seconds`` so garbage tokens cannot turn the
gateway into a JWKS flood.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWKError

__all__ = ["JwksCache"]

log = logging.getLogger(__name__)


class JwksCache:
    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        *,
        max_age_seconds: float = 300.0,
        min_refetch_seconds: float = 5.0,
    ) -> None:
        self.client = client
        self.url = url
        self.max_age = max_age_seconds
        self.min_refetch = min_refetch_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._tried_at = float("-inf")

    async def key(self, kid: str) -> Any | None:
        """The verification key for ``kid``, refetching when it is unknown or stale."""
        now = time.monotonic()
        stale = now - self._fetched_at > self.max_age
        if (kid not in self._keys or stale) and now - self._tried_at > self.min_refetch:
            await self._fetch(now)
        return self._keys.get(kid)

    async def _fetch(self, now: float) -> None:
        self._tried_at = now
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
            return
        self._keys, self._fetched_at = keys, now
