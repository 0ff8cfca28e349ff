"""Redirects answered from the link service's read model, without the link hop.

    memory (5 s) -> read model (Redis, the link service's) -> link service

The link service publishes, in its Redis, each cached link a gateway may
answer by itself (services/chassis/redirects.py, ADR 0022); it is the only
writer. A redirect the gateway does not hold in memory is looked up there
first: an entry is answered at once with the headers the link service would
have sent (``x-gateway-cache: shared``), its click published by the gateway
as for its memory's answers, and learned into memory. No entry, an entry it
cannot read, a Redis that fails or is held off by the breaker: the visit
goes on to the link service, which answers it (and, on a load, publishes
the entry for the next one). The read model makes redirects cheaper; it
never makes one fail.

Lookups made in the same turn of the event loop share one ``MGET``
(services/chassis/coalesce.py). A visit sampled for tracing makes its own
``GET``, so its trace shows the lookup it waited for.
"""

from __future__ import annotations

import logging
import time
from typing import cast

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.config import GatewaySettings
from gateway.fallback import Fallback, Outage
from gateway.visits import sampled
from services.chassis.breaker import Breaker, BreakerOpen
from services.chassis.coalesce import Coalescer
from services.chassis.redirects import Redirect, read_model_key
from services.chassis.redis import create_redis

__all__ = ["RedirectReadModel", "read_model_for"]

log = logging.getLogger(__name__)
LOOKUPS = Counter(
    "gateway_read_model_lookups_total",
    "Redirects looked up in the link service's read model, by result; "
    "every one but a hit goes on to the link service.",
    ["result"],
)
_HIT, _MISS, _UNREADABLE, _ERROR, _BYPASSED = (
    LOOKUPS.labels(r) for r in ("hit", "miss", "unreadable", "error", "bypassed")
)


class RedirectReadModel:
    def __init__(self, redis: Redis, breaker: Breaker) -> None:
        self.redis = redis
        self.breaker = breaker
        self._reads: Coalescer[str, bytes | None] = Coalescer("read_model", self._read_many)

    async def close(self) -> None:
        await self.redis.aclose()

    async def find(self, code: str) -> Redirect | None:
        """The published redirect for ``code``; None: ask the link service."""
        try:
            if sampled():
                with self.breaker.guard():
                    raw = cast("bytes | None", await self.redis.get(read_model_key(code)))
            else:
                raw = await self._reads(code)
        except BreakerOpen:
            _BYPASSED.inc()
            return None
        except (RedisError, OSError) as exc:
            _ERROR.inc()
            log.warning("read model unavailable", extra={"error": repr(exc)})
            return None
        if raw is None:
            _MISS.inc()
            return None
        try:
            redirect = Redirect.decode(raw)
        except ValueError as exc:
            _UNREADABLE.inc()
            log.warning("unreadable read model entry", extra={"code": code, "error": str(exc)})
            return None
        _HIT.inc()
        return redirect

    async def _read_many(self, codes: list[str]) -> list[bytes | None]:
        # One breaker call per round trip: a failed MGET is one failure, not one per visit.
        with self.breaker.guard():
            return cast(
                "list[bytes | None]", await self.redis.mget([read_model_key(c) for c in codes])
            )

    async def serve(self, fallback: Fallback, outage: Outage, generation: int) -> int | None:
        """Answer ``outage``'s redirect from the read model; its status, or None."""
        assert outage.code is not None
        redirect = await self.find(outage.code)
        if redirect is None:
            return None
        headers = [(k.encode(), v.encode("latin-1")) for k, v in redirect.headers(time.time())]
        return await fallback.serve_shared(outage, redirect.status, headers, generation)


def read_model_for(settings: GatewaySettings) -> RedirectReadModel | None:
    """The read model the settings name (GATEWAY_REDIRECT_READ_MODEL_URL), or None."""
    if not settings.redirect_read_model_url:
        return None
    url = settings.redirect_read_model_url
    redis = create_redis(settings.model_copy(update={"redis_url": url}))
    breaker = Breaker(
        "read_model",
        fail_max=settings.redis_breaker_fail_max,
        reset_timeout=settings.redis_breaker_reset_seconds,
        failures=(RedisError, OSError),
    )
    return RedirectReadModel(redis, breaker)
