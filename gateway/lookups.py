"""Redirect lookups coalesced: the visits that arrive together go to the link service as one call.

    visit --> queue --(next turn of the event loop, fewer than N batches in flight)-->
              POST /internal/redirects [visit, visit, ...] --> one answer per visit

Nothing waits on a timer to fill a batch. A lone visit is sent on the
next turn of the loop, by itself; visits arriving while ``max_in_flight``
batches are out queue up and leave together when one comes back, at most
``max_visits`` a batch. So a quiet gateway pays no added latency and a busy
one pays the link hop once per batch instead of once per visit: the busier,
the cheaper a visit (docs/adr/0012-batched-redirect-lookups.md).

A queue behind batches that do not come back (a link service frozen or
restarting) must not hold the visits behind them for longer than their
own timeout: a visit that has waited ``MAX_QUEUE_WAIT`` leaves in a batch
of its own beyond ``max_in_flight`` (up to ``HARD_MAX_IN_FLIGHT``), with
the whole upstream timeout before it, as it would have without batching.

A batch goes through the link upstream's guard like any request: its
breaker, its timeout, retries within the budget when the connection
failed. When the batch gets no answer, every visit in it gets the same
failure, and the proxy answers each as it would have answered the visit
alone (a stale redirect, or 503/504).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import aiohttp
from prometheus_client import Histogram

from gateway.config import GatewaySettings
from gateway.resilience import UpstreamGuard
from services.chassis.breaker import BreakerOpen
from services.chassis.context import new_id
from services.chassis.deadline import timeout_header
from services.chassis.identity import GatewaySigner, Identity
from services.chassis.lookups import (
    BATCH_PATH,
    MAX_VISITS,
    Answer,
    Visit,
    decode_answers,
    encode_visits,
)

__all__ = ["LookupFailed", "RedirectLookups", "create_lookup_session"]

log = logging.getLogger(__name__)
BATCH_SIZE = Histogram(
    "gateway_redirect_batch_visits",
    "Visits per batched lookup sent to the link service.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, MAX_VISITS),
)
# The gateway itself asks; each visit carries its visitor's address.
_GATEWAY = Identity(None, "anonymous", "")
_PATH = BATCH_PATH.encode()


def create_lookup_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """aiohttp on its own for the batches: httpx's Request and Response
    objects cost more than the rest of a batched visit (docs/performance.md)."""
    connector = aiohttp.TCPConnector(
        limit=HARD_MAX_IN_FLIGHT,
        keepalive_timeout=30,
    )
    # An answer's body is relayed as it is: never decompressed here.
    return aiohttp.ClientSession(connector=connector, auto_decompress=False, trust_env=False)


class LookupFailed(Exception):
    """The batch got no answer: ``reason`` is one of the fallback's (gateway/fallback.py)."""

    def __init__(self, reason: str, retry_after: float = 1.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


# How long a visit may wait for a batch to leave before one leaves anyway;
# far above a healthy batch's round trip (about a millisecond), so only a
# link service in trouble makes visits reach it.
MAX_QUEUE_WAIT = 0.05
HARD_MAX_IN_FLIGHT = 64
# Under the link service's body limit (SERVICE max_body_bytes, 64 KiB by
# default) with room to spare: a batch is cut by size as well as by count.
MAX_BATCH_BYTES = 48 * 1024


@dataclass(slots=True)
class _Pending:
    visit: Visit
    answer: asyncio.Future[Answer] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    # An upper bound of the visit's encoded size: two bytes a character for
    # the free-text fields (bounded to 512 characters each), room for the rest.
    size: int = 0
    queued_at: float = field(default_factory=lambda: asyncio.get_running_loop().time())

    def __post_init__(self) -> None:
        self.size = 256 + 2 * (len(self.visit.referer or "") + len(self.visit.user_agent or ""))


class RedirectLookups:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        signer: GatewaySigner,
        guard: UpstreamGuard,
        *,
        max_visits: int,
        max_in_flight: int,
    ) -> None:
        self.session = session
        self.url = base_url + BATCH_PATH
        self.signer = signer
        self.guard = guard
        self.max_visits = max_visits
        self.max_in_flight = max_in_flight
        self._queue: list[_Pending] = []
        self._in_flight = 0
        self._scheduled = False
        self._overdue: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        read = guard.timeouts["read"]
        self._timeout = aiohttp.ClientTimeout(total=read, sock_connect=guard.timeouts["connect"])
        # How long a batch is waited for: the link service counts no visit
        # after it (services/chassis/deadline.py).
        self._budget = timeout_header(read)

    async def lookup(self, visit: Visit) -> Answer:
        """The link service's answer to ``visit``; ``LookupFailed`` if none came."""
        pending = _Pending(visit)
        self._queue.append(pending)
        self._schedule()
        return await pending.answer

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            loop = asyncio.get_running_loop()
            loop.call_soon(self._flush)
            if self._overdue is None:
                self._overdue = loop.call_later(MAX_QUEUE_WAIT, self._flush_overdue)

    def _flush_overdue(self) -> None:
        """Send the queue if its oldest visit has waited ``MAX_QUEUE_WAIT``,
        however many batches are out; look again when the next one will have."""
        self._overdue = None
        if not self._queue:
            return
        loop = asyncio.get_running_loop()
        if loop.time() - self._queue[0].queued_at >= MAX_QUEUE_WAIT:
            self._flush(limit=HARD_MAX_IN_FLIGHT)
        if self._queue:
            due = self._queue[0].queued_at + MAX_QUEUE_WAIT - loop.time()
            self._overdue = loop.call_later(max(due, 0.001), self._flush_overdue)

    def _flush(self, limit: int = 0) -> None:
        self._scheduled = False
        limit = limit or self.max_in_flight
        while self._queue and self._in_flight < limit:
            taken, size = 0, 0
            for pending in self._queue[: self.max_visits]:
                if taken and size + pending.size > MAX_BATCH_BYTES:
                    break
                taken, size = taken + 1, size + pending.size
            batch = self._queue[:taken]
            del self._queue[:taken]
            self._in_flight += 1
            task = asyncio.create_task(self._send(batch), name="redirect-batch")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        BATCH_SIZE.observe(len(batch))
        try:
            answers = await self._call([p.visit for p in batch])
        except LookupFailed as exc:
            _fail(batch, exc)
        except Exception as exc:  # a defect of ours: each visit gets a 503, not a hang
            log.exception("redirect batch failed", extra={"error": repr(exc)})
            _fail(batch, LookupFailed("unavailable"))
        else:
            for pending, answer in zip(batch, answers, strict=True):
                if not pending.answer.done():  # a client that hung up cancelled its own
                    pending.answer.set_result(answer)
        finally:
            self._in_flight -= 1
            if self._queue:
                self._schedule()

    async def _call(self, visits: list[Visit]) -> list[Answer]:
        body = encode_visits(visits)
        headers = dict(self._headers())
        guard = self.guard
        guard.budget.record_request()
        retries = 0
        while True:
            try:
                with guard.breaker.guard():
                    async with self.session.post(
                        self.url, data=body, headers=headers, timeout=self._timeout
                    ) as response:
                        status, raw, payload = (
                            response.status,
                            response.raw_headers,
                            await response.read(),
                        )
            except BreakerOpen as exc:
                guard.failed("breaker_open")
                raise LookupFailed("breaker_open", exc.retry_after) from None
            except TimeoutError:
                guard.timed_out()
                raise LookupFailed("timeout") from None
            except aiohttp.ClientError as exc:
                # Only a batch that never reached the link service is sent
                # again; its visits are GETs (idempotent).
                never_sent = isinstance(exc, aiohttp.ClientConnectorError)
                if never_sent and await guard.retried("GET", retries):
                    retries += 1
                    continue
                guard.unreachable(exc)
                raise LookupFailed("unavailable") from None
            if status != 200:
                # The link service refused the batch itself (draining, say):
                # each visit gets that answer, as it would have alone.
                return [Answer(status, list(raw), payload)] * len(visits)
            try:
                return decode_answers(payload, len(visits))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("malformed batch answer", extra={"error": repr(exc)})
                raise LookupFailed("unavailable") from None

    def _headers(self) -> list[tuple[str, str]]:
        signed = self.signer.headers("POST", _PATH, _GATEWAY)
        return [
            *((k.decode(), v.decode()) for k, v in signed),
            ("content-type", "application/json"),
            self._budget,
            # Sampled visits are not batched (gateway/proxy.py): the link
            # service must not start a trace of its own for this call. Ids
            # from the request ids' buffered generator: two getrandom calls a
            # batch cost ~3 µs here (a system call is ~1 µs on this machine).
            ("traceparent", f"00-{new_id()}-{new_id()[:16]}-00"),
        ]


def _fail(batch: list[_Pending], failure: LookupFailed) -> None:
    for pending in batch:
        if not pending.answer.done():
            pending.answer.set_exception(failure)
