"""The rules of links: creating, reading, changing and deleting them.

The service owns its units of work: a transaction is opened and committed by
``session_scope`` here (a creation is one statement, a transaction of its
own: repository.insert_with_event), and the cache entry is replaced by a
tombstone only after the commit; the tombstone fences the loads in progress
(cache.py), so a reader that read the row before the commit cannot put it
back. Each change
writes its ``LinkChanged`` event to the outbox in that same transaction
(outbox.py): no event for a change that rolled back, no change without its
event.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from services.chassis.db import session_scope
from services.chassis.errors import UnauthorizedError
from services.chassis.events import LINKS_TOPIC, LinkChanged, LinkChangeType
from services.chassis.identity import Identity
from services.chassis.redirects import PERMANENT_REDIRECTS
from services.chassis.urls import normalize_url
from services.link.cache import LinkCache
from services.link.codes import RESERVED, alias_problem, generate_code
from services.link.exceptions import (
    AliasTaken,
    CodeSpaceExhausted,
    InvalidCursor,
    InvalidLink,
    LinkNotFound,
    NotLinkOwner,
)
from services.link.models import Link
from services.link.outbox import stage, staged_event
from services.link.repository import LinkRepository, insert_with_event
from services.link.resolver import check_shape
from services.link.schemas import LinkCreate, LinkUpdate

__all__ = ["LinkService", "usage_visible"]
# At the sizing in docs/capacity.md a collision is ~1 in 600 at the end of
# year five; five in a row means something is wrong, not unlucky.
MAX_CODE_ATTEMPTS = 5


class LinkService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        engine: AsyncEngine,
        cache: LinkCache,
        *,
        code_length: int,
        own_hosts: frozenset[str],
        allow_anonymous: bool,
        events_committed: Callable[[], None],
    ) -> None:
        self.sessions = sessions
        # A creation is one statement, a transaction on its own (_insert_one).
        self.autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.cache = cache
        self.code_length = code_length
        self.own_hosts = own_hosts
        self.allow_anonymous = allow_anonymous
        # Called after a commit that wrote outbox rows: the relay sends them now
        # instead of at its next poll.
        self.events_committed = events_committed

    async def create(self, data: LinkCreate, caller: Identity) -> Link:
        """Store a new link under its alias or a fresh random code, owned by the caller."""
        if caller.anonymous and not self.allow_anonymous:
            raise UnauthorizedError("Creating links needs an account or an API key.")
        url = self._valid_url(data.url)
        if data.alias is not None and (problem := alias_problem(data.alias)) is not None:
            raise InvalidLink(problem)
        _check_expiry(data.expires_at)
        _check_limit(data.max_visits, data.redirect_type)
        link = await self._insert(data, url, _owner(caller))
        # A scan may have cached this code as unknown before it existed.
        await self.cache.invalidate(link.code)
        self.events_committed()
        return link

    async def get(self, code: str) -> Link:
        """The stored link, expired or not (metadata stays readable)."""
        check_shape(code)
        async with session_scope(self.sessions) as session:
            link = await LinkRepository(session).get_by_code(code)
        if link is None:
            raise LinkNotFound(f"No link with code '{code}'.")
        return link

    async def list_mine(
        self, caller: Identity, cursor: str | None, limit: int
    ) -> tuple[Sequence[Link], str | None]:
        """A page of the caller's links, newest first, and the cursor of the next page."""
        owner = _require_user(caller)
        before = _decode_cursor(cursor) if cursor else None
        async with session_scope(self.sessions) as session:
            rows = await LinkRepository(session).list_by_owner(
                owner, before_id=before, limit=limit + 1
            )
        page, more = rows[:limit], len(rows) > limit
        return page, _encode_cursor(page[-1].id) if more else None

    async def update(self, code: str, data: LinkUpdate, caller: Identity) -> Link:
        """Change target, expiry, type or visit limit; the next redirect sees the change."""
        owner = _require_user(caller)
        check_shape(code)
        changes = data.model_dump(exclude_unset=True)
        if "url" in changes:
            changes["url"] = self._valid_url(changes["url"])
        _check_expiry(changes.get("expires_at"))
        async with session_scope(self.sessions) as session:
            link = await self._owned(LinkRepository(session), code, owner)
            for field, value in changes.items():
                setattr(link, field, value)
            # Checked on the result: the limit and the type may come from
            # this request or from the stored link. Raising rolls it all back.
            _check_limit(link.max_visits, link.redirect_type)
            _record(session, "link.updated", link)
        # The cache and the read model first: a gateway that hears of the
        # change (LinkChanged, through the relay) must not read the old entry.
        await self.cache.invalidate(code)
        self.events_committed()
        return link

    async def delete(self, code: str, caller: Identity) -> None:
        """Delete a link: its redirect answers 404 from the next request on."""
        owner = _require_user(caller)
        check_shape(code)
        async with session_scope(self.sessions) as session:
            link = await self._owned(LinkRepository(session), code, owner)
            link.deleted_at = datetime.now(UTC)
            _record(session, "link.deleted", link)
        await self.cache.invalidate(code)
        self.events_committed()

    async def _owned(self, repository: LinkRepository, code: str, owner: uuid.UUID) -> Link:
        link = await repository.get_by_code(code, for_update=True)
        if link is None:
            raise LinkNotFound(f"No link with code '{code}'.")
        if link.owner_id != owner:
            raise NotLinkOwner(f"The link '{code}' belongs to someone else.")
        return link

    def _valid_url(self, url: str) -> str:
        # Raises an InvalidUrl (422) whose code says why.
        return normalize_url(url, own_hosts=self.own_hosts)

    async def _insert(self, data: LinkCreate, url: str, owner: uuid.UUID | None) -> Link:
        fields = {
            "url": url,
            "redirect_type": data.redirect_type,
            "expires_at": data.expires_at,
            "owner_id": owner,
            "max_visits": data.max_visits,
        }
        async with self.autocommit.connect() as connection:
            if data.alias is not None:
                link = await _insert_one(connection, data.alias, fields)
                if link is None:
                    raise AliasTaken(f"The alias '{data.alias}' is already taken.")
                return link
            for _ in range(MAX_CODE_ATTEMPTS):
                code = generate_code(self.code_length)
                if code.lower() in RESERVED:  # "healthz" is seven base62 letters too
                    continue
                link = await _insert_one(connection, code, fields)
                if link is not None:
                    return link
        raise CodeSpaceExhausted("Could not find a free code; try again.")


async def _insert_one(
    connection: AsyncConnection, code: str, fields: Mapping[str, object]
) -> Link | None:
    """The link under ``code`` with the event of its creation, or None if the code is taken."""
    link = Link(code=code, **fields)
    event = _event("link.created", link)
    return await insert_with_event(
        connection, link, staged_event(LINKS_TOPIC, event.key(), event.to_json())
    )


def _record(session: AsyncSession, change: LinkChangeType, link: Link) -> None:
    """Stage the event of ``change`` in the transaction that makes it."""
    event = _event(change, link)
    stage(session, LINKS_TOPIC, event.key(), event.to_json())


def _event(change: LinkChangeType, link: Link) -> LinkChanged:
    live = change != "link.deleted"
    return LinkChanged(
        event_id=uuid.uuid4().hex,
        type=change,
        code=link.code,
        owner_id=str(link.owner_id) if link.owner_id else None,
        url=link.url if live else None,
        # A PATCH may give any offset; events speak UTC, as the database does.
        expires_at=link.expires_at.astimezone(UTC) if live and link.expires_at else None,
        redirect_type=link.redirect_type if live else None,
        occurred_at=datetime.now(UTC),
        max_visits=link.max_visits if live else None,
    )


def usage_visible(link: Link, caller: Identity) -> bool:
    """Whether ``caller`` may see how much ``link`` was used: as for its stats,
    the owner of an owned link, anyone for an anonymous one."""
    return link.owner_id is None or link.owner_id == _owner(caller)


def _owner(caller: Identity) -> uuid.UUID | None:
    return uuid.UUID(caller.user_id) if caller.user_id else None


def _require_user(caller: Identity) -> uuid.UUID:
    owner = _owner(caller)
    if owner is None:
        raise UnauthorizedError("This needs an account or an API key.")
    return owner


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InvalidLink("expires_at must be in the future.")


def _check_limit(max_visits: int | None, redirect_type: int) -> None:
    if max_visits is not None and redirect_type in PERMANENT_REDIRECTS:
        raise InvalidLink(
            "A link with max_visits cannot be a permanent redirect (301/308): "
            "browsers would replay it without asking, and those visits would not count."
        )


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        value = int(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("The cursor is not one this API gave out.") from None
    if value <= 0:
        raise InvalidCursor("The cursor is not one this API gave out.")
    return value
