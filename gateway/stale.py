"""Redirects the gateway may replay while the link service cannot answer.

When the link service is down, slow, or its breaker is open, a redirect to a
link resolved in the last few minutes is still served from here, marked with
``x-gateway-cache: stale``. Only where that is safe: the link service says
how long a redirect stays valid in ``x-redirect-stale-ttl`` (the link's
remaining lifetime) and says nothing for a link that must not be replayed
(one that expires sooner than that is useful, or, later, one with a visit
limit whose count a replay would bypass). Entries are bounded in number
(least recently used first out) and in age.

A replayed redirect is still a click: the gateway publishes the
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

from services.chassis.context import request_id_var
from services.chassis.events import LinkClicked, bounded_header, hash_ip
from services.chassis.kafka import EventPublisher

__all__ = ["STALE_TTL_HEADER", "StaleClicks", "StaleRedirect", "StaleRedirects"]

STALE_TTL_HEADER = b"x-redirect-stale-ttl"
STALE_SERVED = Counter(
    "gateway_stale_redirects_total", "Redirects replayed from the stale cache during an outage."
)
STALE_ENTRIES = Gauge("gateway_stale_cache_entries", "Redirects held for replay.")


@dataclass(frozen=True, slots=True)
class StaleRedirect:
    status: int
    location: bytes
    valid_until: float  # on the cache's clock


class StaleRedirects:
    """A bounded LRU of recent redirects, each valid for a bounded time."""

    def __init__(
        self,
        max_entries: int,
        max_age_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_age = max_age_seconds
        self._clock = clock
        self._entries: OrderedDict[str, StaleRedirect] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, code: str, status: int, location: bytes, ttl_header: bytes | None) -> None:
        """Keep a redirect the link service just served, if it said it may be replayed."""
        if self.max_entries == 0:
            return
        if ttl_header is None or not ttl_header.isdigit():
            self._entries.pop(code, None)  # no longer replayable (changed since)
            return
        ttl = min(float(ttl_header), self.max_age)
        if ttl <= 0:
            self._entries.pop(code, None)
            return
        self._entries[code] = StaleRedirect(status, location, self._clock() + ttl)
        self._entries.move_to_end(code)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        STALE_ENTRIES.set(len(self._entries))

    def forget(self, code: str) -> None:
        self._entries.pop(code, None)

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
    """The click events of replayed redirects, as the link service would write them."""

    def __init__(self, publisher: EventPublisher, ip_hash_key: bytes) -> None:
        self.publisher = publisher
        self._key = ip_hash_key

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
            ip_hash=hash_ip(self._key, client_ip),
            request_id=request_id_var.get(),
        )
        return self.publisher.publish(event.key(), event.to_json())
