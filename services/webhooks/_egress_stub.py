"""A stand-in for ``services.webhooks.egress`` until it is merged: same API, no SSRF checks.

The real module (another branch) checks the resolved address at connect
time against ``EgressPolicy``; this one only POSTs with httpx, never
follows redirects, bounds the time and the body read. It is imported in one
place (services/webhooks/dispatcher.py), so switching is one line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

__all__ = ["Egress", "EgressPolicy", "Outcome"]


@dataclass(frozen=True)
class EgressPolicy:
    allow_private: bool = False
    allowed_networks: tuple[str, ...] = ()
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    max_response_bytes: int = 65536
    excerpt_bytes: int = 1024


@dataclass(frozen=True)
class Outcome:
    status: int | None
    latency_seconds: float
    excerpt: str
    error: str | None
    address: str | None


class Egress:
    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        timeout = httpx.Timeout(policy.total_timeout, connect=policy.connect_timeout)
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        started = time.perf_counter()
        status: int | None = None
        try:
            async with (
                asyncio.timeout(self.policy.total_timeout),
                self._client.stream("POST", url, content=body, headers=dict(headers)) as response,
            ):
                status = response.status_code
                read = bytearray()
                async for chunk in response.aiter_bytes():
                    read += chunk
                    if len(read) > self.policy.max_response_bytes:
                        return self._outcome(started, status, bytes(read), "response_too_large")
        except (TimeoutError, httpx.TimeoutException):
            return self._outcome(started, status, b"", "timeout")
        except httpx.ConnectError:
            return self._outcome(started, None, b"", "connect_failed")
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            return self._outcome(started, None, b"", "invalid_url")
        except httpx.HTTPError:
            return self._outcome(started, status, b"", "protocol_error")
        return self._outcome(started, status, bytes(read), None)

    def _outcome(
        self, started: float, status: int | None, body: bytes, error: str | None
    ) -> Outcome:
        excerpt = body[: self.policy.excerpt_bytes].decode(errors="replace")
        return Outcome(status, time.perf_counter() - started, excerpt, error, None)

    async def aclose(self) -> None:
        await self._client.aclose()
