"""The rules of links: creating them and resolving codes.

The service owns its units of work: a transaction is opened and committed by
``session_scope`` here, and the cache is touched only after the commit, so a
reader can never cache a state the database does not have.
"""

from __future__ import annotations

import asyncio
import functools
import time
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.chassis.db import session_scope
from services.chassis.errors import DomainError
from services.link.cache import NEGATIVE, CachedLink, LinkCache
from services.link.codes import CODE_RE, RESERVED, alias_problem, generate_code
from services.link.exceptions import (
    AliasTaken,
    CodeSpaceExhausted,
    LinkExpired,
    LinkNotFound,
)
from services.link.models import Link
from services.link.repository import LinkRepository
from services.link.schemas import LinkCreate
from services.link.urls import InvalidUrl, normalize_url

__all__ = ["InvalidLink", "LinkService"]

# At the sizing in docs/capacity.md a collision is ~1 in 600 at the end of
# year five; five in a row means something is wrong, not unlucky.
MAX_CODE_ATTEMPTS = 5


class InvalidLink(DomainError):
    status_code = 422
    code = "invalid_link"
    title = "Invalid link"


class LinkService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache: LinkCache,
        *,
        code_length: int,
        own_hosts: frozenset[str],
    ) -> None:
        self.sessions = sessions
        self.cache = cache
        self.code_length = code_length
        self.own_hosts = own_hosts
        self._loading: dict[str, asyncio.Future[CachedLink | None]] = {}

    async def create(self, data: LinkCreate) -> Link:
        """Store a new link under its alias or a fresh random code."""
        try:
            url = normalize_url(data.url, own_hosts=self.own_hosts)
        except InvalidUrl as exc:
            raise InvalidLink(str(exc)) from None
        if data.alias is not None and (problem := alias_problem(data.alias)) is not None:
            raise InvalidLink(problem)
        if data.expires_at is not None and data.expires_at <= datetime.now(UTC):
            raise InvalidLink("expires_at must be in the future.")
        async with session_scope(self.sessions) as session:
            link = await self._insert(LinkRepository(session), data, url)
        # A scan may have cached this code as unknown before it existed.
        await self.cache.invalidate(link.code)
        return link

    async def _insert(self, repository: LinkRepository, data: LinkCreate, url: str) -> Link:
        insert = functools.partial(
            repository.insert_if_free,
            url=url,
            redirect_type=data.redirect_type,
            expires_at=data.expires_at,
        )
        if data.alias is not None:
            link = await insert(code=data.alias)
            if link is None:
                raise AliasTaken(f"The alias '{data.alias}' is already taken.")
            return link
        for _ in range(MAX_CODE_ATTEMPTS):
            code = generate_code(self.code_length)
            if code.lower() in RESERVED:  # "healthz" is seven base62 letters too
                continue
            link = await insert(code=code)
            if link is not None:
                return link
        raise CodeSpaceExhausted("Could not find a free code; try again.")

    async def get(self, code: str) -> Link:
        """The stored link, expired or not (metadata stays readable)."""
        _check_shape(code)
        async with session_scope(self.sessions) as session:
            link = await LinkRepository(session).get_by_code(code)
        if link is None:
            raise LinkNotFound(f"No link with code '{code}'.")
        return link

    async def resolve(self, code: str) -> CachedLink:
        """Where ``code`` redirects to: the hot path, served from the cache when possible."""
        _check_shape(code)
        cached = await self.cache.get(code)
        if cached is NEGATIVE:
            raise LinkNotFound(f"No link with code '{code}'.")
        link = cached if isinstance(cached, CachedLink) else await self._load_once(code)
        if link is None:
            raise LinkNotFound(f"No link with code '{code}'.")
        if link.expired(time.time()):
            raise LinkExpired(f"The link '{code}' has expired.")
        return link

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
        link = CachedLink(
            row.url, row.redirect_type, row.expires_at.timestamp() if row.expires_at else None
        )
        await self.cache.put(code, link)
        return link


def _check_shape(code: str) -> None:
    """A string that cannot be a code is simply not found (and never a cache key)."""
    if not CODE_RE.fullmatch(code):
        raise LinkNotFound(f"No link with code '{code[:64]}'.")
