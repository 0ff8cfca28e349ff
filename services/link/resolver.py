"""Resolving a code to its target: the hot path, served from the cache.

Links with a visit limit are the exception: the cache only tells that a
link is limited, and every visit is counted (or refused) by one atomic
UPDATE in Postgres. A cached copy would let visits past the limit slip by.
Once Postgres refuses a visit, the entry is reloaded and says why (limit
reached, expired, deleted), so later visits are refused by Redis alone: an
exhausted link cannot be hammered into a write per visit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from math import ceil
from typing import Any, Protocol

from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.chassis.db import session_scope
from services.chassis.deadline import DeadlineExceeded, remaining
from services.link.cache import NEGATIVE, CachedLink, LinkCache, Lookup, Ticket
from services.link.codes import CODE_RE
from services.link.exceptions import LinkExpired, LinkNotFound, VisitLimitReached
from services.link.repository import LinkRepository, live_links

__all__ = [
    "UNLOOKED",
    "LinkReader",
    "LinkResolver",
    "LinkRow",
    "Unlooked",
    "check_shape",
    "link_reader",
]


class LinkRow(Protocol):
    """A row read for the cache: its columns by name (an asyncpg ``Record``)."""

    def __getitem__(self, column: str, /) -> Any: ...


LinkReader = Callable[[list[str]], Awaitable[Sequence[LinkRow]]]
"""Reads the live links among some codes from Postgres: the rows ``_entry`` reads."""


def link_reader(engine: AsyncEngine) -> LinkReader:
    """Reads on an autocommit connection: one statement, no BEGIN and COMMIT around it."""
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def read(codes: list[str]) -> Sequence[LinkRow]:
        async with autocommit.connect() as connection:
            return await live_links(connection, codes)

    return read


LIMITED_VISITS = Counter(
    "link_limited_visits_total",
    "Visits of links with a visit limit: counted in Postgres, refused (limit, expiry, "
    "deleted), or not counted because the gateway had stopped waiting (late).",
    ["result"],
)
_COUNTED, _REFUSED, _LATE = (LIMITED_VISITS.labels(r) for r in ("counted", "refused", "late"))
_CANCELLED = "57014"  # query_canceled: here, by the statement timeout the budget set


class Unlooked:
    """The cache was not asked yet."""


UNLOOKED = Unlooked()


def check_shape(code: str) -> None:
    """A string that cannot be a code is simply not found (and never a cache key)."""
    if not CODE_RE.fullmatch(code):
        raise LinkNotFound(f"No link with code '{code[:64]}'.")


class LinkResolver:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], cache: LinkCache, read: LinkReader
    ) -> None:
        self.sessions = sessions  # for the visits of limited links, counted in a transaction
        self.cache = cache
        self.read = read
        self._loading: dict[str, asyncio.Future[CachedLink | None]] = {}

    async def resolve(self, code: str, cached: Lookup | Unlooked = UNLOOKED) -> CachedLink:
        """Where ``code`` redirects to, from the cache when possible.

        ``cached``: what the cache held for ``code``, when the caller looked
        it up already (a batch of visits, in one round trip).
        """
        check_shape(code)
        if isinstance(cached, Unlooked):
            cached = await self.cache.get(code)
        if isinstance(cached, CachedLink):
            link: CachedLink | None = cached
        elif isinstance(cached, Ticket) or cached is None:
            link = await self._load_once(code, cached)
        else:
            link = None  # known not to exist
        link = _followable(code, link)
        if link.limited:
            return await self._count_visit(code)
        return link

    async def _count_visit(self, code: str) -> CachedLink:
        """A visit of a limited link, counted in Postgres; the row's state wins over the cache.

        Not counted once the gateway has stopped waiting for it (its budget,
        services/chassis/deadline.py): the visitor got a 504, and the visit
        must not use up one of the link's.
        """
        try:
            async with session_scope(self.sessions) as session:
                await _within_budget(session, code)
                counted = await LinkRepository(session).count_visit(code)
        except DBAPIError as exc:
            if remaining() is not None and getattr(exc.orig, "sqlstate", None) == _CANCELLED:
                _LATE.inc()
                raise DeadlineExceeded(f"The visit of '{code}' was not counted in time.") from None
            raise
        if counted is None:
            _REFUSED.inc()
            # The entry that let this visit through is out of date: invalidate
            # and reload it, so the next visits are refused by the cache, and
            # tell this one why.
            _followable(code, await self._load(code, await self.cache.supersede(code)))
            # The row looks followable again: a change raced this visit, which lost.
            raise VisitLimitReached(f"The link '{code}' has had all the visits it allows.")
        _COUNTED.inc()
        url, redirect_type, expires_at = counted
        return CachedLink(
            url, redirect_type, expires_at.timestamp() if expires_at else None, limited=True
        )

    async def _load_once(self, code: str, ticket: Ticket | None) -> CachedLink | None:
        """Load a missed code from Postgres, once per process however many ask.

        Without this, a popular link whose entry expires sends every
        concurrent request to the database at once (a cache stampede). The
        first asker's ticket fences the load they share.
        """
        pending = self._loading.get(code)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[CachedLink | None] = asyncio.get_running_loop().create_future()
        self._loading[code] = future
        try:
            link = await self._load(code, ticket)
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

    async def load_many(self, missed: dict[str, Ticket | None]) -> dict[str, CachedLink | None]:
        """Load a batch's missed codes from Postgres in one query; each is then
        cached as ``_load`` caches one, fenced by its own ticket.

        The codes another request is already loading are not loaded twice:
        their loads are awaited (single flight, as ``_load_once``).
        """
        loop = asyncio.get_running_loop()
        shared = {c: self._loading[c] for c in missed if c in self._loading}
        mine = {c: loop.create_future() for c in missed if c not in shared}
        self._loading.update(mine)
        try:
            if mine:
                found = {row["code"]: _entry(row) for row in await self.read(list(mine))}
                for code, future in mine.items():
                    future.set_result(found.get(code))
                fills = [
                    self.cache.fill(code, found.get(code) or NEGATIVE, ticket)
                    for code, ticket in missed.items()
                    if code in mine and ticket is not None
                ]
                await asyncio.gather(*fills)
        except asyncio.CancelledError:
            for future in mine.values():
                future.cancel()
            raise
        except Exception as exc:
            for future in mine.values():
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # marked retrieved: the waiters re-raise it
            raise
        finally:
            for code in mine:
                del self._loading[code]
        loaded = {c: f.result() for c, f in mine.items()}
        for code, future in shared.items():
            loaded[code] = await asyncio.shield(future)
        return loaded

    async def _load(self, code: str, ticket: Ticket | None) -> CachedLink | None:
        """The row from Postgres, cached unless the entry changed since ``ticket``."""
        rows = await self.read([code])
        link = _entry(rows[0]) if rows else None
        if ticket is not None:
            await self.cache.fill(code, NEGATIVE if link is None else link, ticket)
        return link


def _entry(row: LinkRow) -> CachedLink:
    """What the cache keeps of a row. Exhausted stays true until a change: visits only grow."""
    expires_at = row["expires_at"].timestamp() if row["expires_at"] else None
    max_visits = row["max_visits"]
    limited = max_visits is not None
    exhausted = max_visits is not None and row["visits"] >= max_visits
    return CachedLink(row["url"], row["redirect_type"], expires_at, limited, exhausted)


async def _within_budget(session: AsyncSession, code: str) -> None:
    """Bound this transaction by what is left of the caller's budget, if it
    sent one: refuse the visit as late when nothing is (the wait for a pooled
    connection counts too), else cap its statements at what is left, so a
    slow Postgres (a queue on the row's lock, a slow disk) cannot commit the
    count after the caller gave up."""
    left = remaining()
    if left is not None and left > 0:
        await session.connection()
        left = remaining()
    if left is None:
        return
    if left <= 0:
        _LATE.inc()
        raise DeadlineExceeded(f"The visit of '{code}' came after the caller stopped waiting.")
    await session.execute(text(f"SET LOCAL statement_timeout = {ceil(left * 1000)}"))


def _followable(code: str, link: CachedLink | None) -> CachedLink:
    """The link if it may be followed; otherwise the error that says why not."""
    if link is None:
        raise LinkNotFound(f"No link with code '{code}'.")
    if link.expired(time.time()):
        raise LinkExpired(f"The link '{code}' has expired.")
    if link.exhausted:
        raise VisitLimitReached(f"The link '{code}' has had all the visits it allows.")
    return link
