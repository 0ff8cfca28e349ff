"""Resolving a code to its target: the hot path, served from the cache.

Links with a visit limit are the exception: the cache only tells that a
link is limited, and every visit is counted (or refused) by one atomic
UPDATE in Postgres. A cached copy would let visits past the limit slip by.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.chassis.db import session_scope
from services.link.cache import NEGATIVE, CachedLink, LinkCache
from services.link.codes import CODE_RE
from services.link.exceptions import LinkExpired, LinkNotFound, VisitLimitReached
from services.link.repository import LinkRepository

__all__ = ["LinkResolver", "check_shape"]

LIMITED_VISITS = Counter(
    "link_limited_visits_total",
    "Visits of links with a visit limit: counted in Postgres, or refused (limit, expiry, deleted).",
    ["result"],
)
_COUNTED, _REFUSED = LIMITED_VISITS.labels("counted"), LIMITED_VISITS.labels("refused")


def check_shape(code: str) -> None:
    """A string that cannot be a code is simply not found (and never a cache key)."""
    if not CODE_RE.fullmatch(code):
        raise LinkNotFound(f"No link with code '{code[:64]}'.")


class LinkResolver:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache: LinkCache) -> None:
        self.sessions = sessions
        self.cache = cache
        self._loading: dict[str, asyncio.Future[CachedLink | None]] = {}

    async def resolve(self, code: str) -> CachedLink:
        """Where ``code`` redirects to, from the cache when possible."""
        check_shape(code)
        cached = await self.cache.get(code)
        if cached is NEGATIVE:
            raise LinkNotFound(f"No link with code '{code}'.")
        link = cached if isinstance(cached, CachedLink) else await self._load_once(code)
        if link is None:
            raise LinkNotFound(f"No link with code '{code}'.")
        if link.expired(time.time()):
            raise LinkExpired(f"The link '{code}' has expired.")
        if link.limited:
            return await self._count_visit(code)
        return link

    async def _count_visit(self, code: str) -> CachedLink:
        """A visit of a limited link, counted in Postgres; the row's state wins over the cache."""
        async with session_scope(self.sessions) as session:
            repository = LinkRepository(session)
            counted = await repository.count_visit(code)
            # Refused: tell why, from the same transaction.
            row = None if counted is not None else await repository.get_by_code(code)
        (_COUNTED if counted is not None else _REFUSED).inc()
        if counted is not None:
            url, redirect_type, expires_at = counted
            return CachedLink(
                url, redirect_type, expires_at.timestamp() if expires_at else None, limited=True
            )
        if row is None:
            raise LinkNotFound(f"No link with code '{code}'.")
        if row.expires_at is not None and row.expires_at.timestamp() <= time.time():
            raise LinkExpired(f"The link '{code}' has expired.")
        raise VisitLimitReached(f"The link '{code}' has had all the visits it allows.")

    async def _load_once(self, code: str) -> CachedLink | None:
        """Load a missed code from Postgres, once per process however many ask.

        Without this, a popular link whose entry expires sends every
        concurrent request to the database at once (a cache stampede).
        """
        pending = self._loading.get(code)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[CachedLink | None] = asyncio.get_running_loop().create_future()
        self._loading[code] = future
        try:
            link = await self._load(code)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: the waiters re-raise it
            raise
        else:
            future.set_result(link)
            return link
        finally:
            del self._loading[code]

    async def _load(self, code: str) -> CachedLink | None:
        async with session_scope(self.sessions) as session:
            row = await LinkRepository(session).get_by_code(code)
        if row is None:
            await self.cache.put(code, NEGATIVE)
            return None
        expires_at = row.expires_at.timestamp() if row.expires_at else None
        link = CachedLink(row.url, row.redirect_type, expires_at, row.max_visits is not None)
        await self.cache.put(code, link)
        return link
