"""Redirects the gateway keeps: served fresh for a few seconds, replayed
stale while the link service cannot answer.

**Fresh** (``x-gateway-cache: hit``): for ``freshness`` seconds after the
link service answered, the same redirect is served from here without the
link hop (docs/adr/0009-redirect-cache-at-the-gateway.md). A change made
through this gateway drops the entry at once (``invalidate``); one made
through another replica arrives on the ``links`` topic
(gateway/linkchanges.py), and the freshness bound caps how long a late
event can leave the old target in use.

**Stale**: while the link service cannot answer,

a redirect to a link resolved in the last few minutes is served, marked with
``x-gateway-cache: stale``. Only where that is safe: the link service says
how long a redirect stays valid in ``x-redirect-stale-ttl`` (the link's
remaining lifetime) and says nothing for a link that must not be replayed
(one that expires sooner than that is useful, or, later, one with a visit
limit whose count a replay would bypass). Entries are bounded in number
(least recently used first out) and in age.

A redirect served from here is still a click: the gateway publishes the
``LinkClicked`` event itself, in the same shape the link service would
have, so counting stays exact through the outage.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge

from services.chassis import redirects
from services.chassis.context import request_id_var
from services.chassis.events import IpHasher, LinkClicked, bounded_header
from services.chassis.kafka import EventPublisher

__all__ = ["STALE_TTL_HEADER", "StaleClicks", "StaleRedirect", "StaleRedirects"]

STALE_TTL_HEADER = redirects.STALE_TTL_HEADER.encode()
STALE_SERVED = Counter(
    "gateway_stale_redirects_total", "Redirects replayed from the stale cache during an outage."
)
STALE_ENTRIES = Gauge("gateway_stale_cache_entries", "Redirects held for replay.")
FRESH_SERVED = Counter(
    "gateway_redirect_cache_hits_total", "Redirects served fresh from the gateway's memory."
)


@dataclass(frozen=True, slots=True)
class StaleRedirect:
    status: int
    location: bytes
    cache_control: bytes | None
    stored_at: float  # on the cache's clock, like the two below
    fresh_until: float
    valid_until: float


class StaleRedirects:
    """A bounded LRU of recent redirects, each fresh, then valid, for a bounded time."""

    def __init__(
        self,
        max_entries: int,
        max_age_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        freshness_seconds: float = 0.0,
    ) -> None:
        self.max_entries = max_entries
        self.max_age = max_age_seconds
        self.freshness = freshness_seconds
        self._clock = clock
        self._entries: OrderedDict[str, StaleRedirect] = OrderedDict()
        # Bumped by every invalidation: an answer that left the link service
        # before a change but arrives after it must not be kept (``remember``).
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def remember(  # noqa: PLR0917 - the parts of one answer
        self,
        code: str,
        status: int,
        location: bytes,
        ttl_header: bytes | None,
        cache_control: bytes | None = None,
        generation: int | None = None,
    ) -> None:
        """Keep a redirect the link service just served, if it said it may be replayed.

        ``generation``: ``self.generation`` when the request was sent; if a
        link changed since, the answer may predate the change and is dropped.
        """
        if self.max_entries == 0:
            return
        if generation is not None and generation != self.generation:
            self._entries.pop(code, None)
            return
        if ttl_header is None or not ttl_header.isdigit():
            self._entries.pop(code, None)  # no longer replayable (changed since)
            return
        ttl = min(float(ttl_header), self.max_age)
        if ttl <= 0:
            self._entries.pop(code, None)
            return
        now = self._clock()
        # Never fresh past the link's own end (the TTL is its remaining life).
        fresh = min(self.freshness, float(ttl_header))
        self._entries[code] = StaleRedirect(
            status, location, cache_control, now, now + fresh, now + ttl
        )
        self._entries.move_to_end(code)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        STALE_ENTRIES.set(len(self._entries))

    def forget(self, code: str) -> None:
        self._entries.pop(code, None)

    def invalidate(self, code: str) -> None:
        """The link changed (or is about to): drop it and any answer in flight."""
        self.generation += 1
        if self._entries.pop(code, None) is not None:
            STALE_ENTRIES.set(len(self._entries))

    def fresh(self, code: str) -> StaleRedirect | None:
        """The redirect to serve for ``code`` without asking the link service."""
        entry = self._entries.get(code)
        if entry is None or self._clock() >= entry.fresh_until:
            return None
        FRESH_SERVED.inc()
        return entry

    def age(self, entry: StaleRedirect) -> int:
        """Whole seconds since the link service gave ``entry`` (an ``Age`` header)."""
        return int(self._clock() - entry.stored_at)

    def get(self, code: str) -> StaleRedirect | None:
        """The redirect to replay for ``code``, or None when none is safe."""
        entry = self._entries.get(code)
        if entry is None:
            return None
        if self._clock() >= entry.valid_until:
            del self._entries[code]
            STALE_ENTRIES.set(len(self._entries))
            return None
        STALE_SERVED.inc()
        return entry


class StaleClicks:
    """The click events of redirects the gateway answers itself (fresh or
    replayed), as the link service would write them."""

    def __init__(self, publisher: EventPublisher, ip_hash_key: bytes) -> None:
        self.publisher = publisher
        self._hash = IpHasher(ip_hash_key)

    def record(
        self,
        code: str,
        headers: list[tuple[bytes, bytes]],
        client_ip: str | None,
        click_id: str | None,
    ) -> bool:
        """Publish the click; ``click_id`` is the id the link service was given
        for this visit, so a visit it also counted (it answered, too late) is
        one event, deduplicated downstream."""
        referrer = user_agent = None
        for name, value in headers:
            if name == b"referer":
                referrer = bounded_header(value.decode("latin-1"))
            elif name == b"user-agent":
                user_agent = bounded_header(value.decode("latin-1"))
        event = LinkClicked(
            event_id=click_id or uuid.uuid4().hex,
            code=code,
            occurred_at=datetime.now(UTC),
            referrer=referrer,
            user_agent=user_agent,
            ip_hash=self._hash(client_ip),
            request_id=request_id_var.get(),
        )
        return self.publisher.publish(event.key(), event.to_json())
