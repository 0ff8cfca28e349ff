"""How long the caller will wait: a time budget passed on with each internal request.

The gateway gives up on an upstream after its timeout and answers 504.
Work the upstream does after that is wasted and, where it has effects,
wrong: a visit of a visit-limited link counted after the visitor got a 504
uses up one of the link's visits for a redirect nobody received. So the
gateway tells each upstream how long it will wait, ``x-timeout-ms`` (what
Envoy's ``x-envoy-expected-rq-timeout-ms`` and gRPC's ``grpc-timeout`` do),
and a service about to do something it cannot take back checks what is left
first and bounds the work by it (``remaining``).

A budget, not a time of day: the two hosts' clocks need not agree. It is
counted from when the request reached this process, less a margin for the
answer's way back, so what is left errs on the short side. Only a request
the gateway signed is read (the services refuse any other); the gateway
drops a client's own header (gateway/headers.py).
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Final

from starlette.types import Scope

from services.chassis.errors import DomainError

__all__ = ["TIMEOUT_HEADER", "DeadlineExceeded", "accept_budget", "remaining", "timeout_header"]

TIMEOUT_HEADER: Final = "x-timeout-ms"
_HEADER: Final = TIMEOUT_HEADER.encode()
# Beyond this a budget is no bound worth keeping (the services' own timeouts are shorter).
_MAX_MS: Final = 600_000
# Kept back for the answer's way back to the gateway: 10 % of the budget, at most 100 ms.
_MARGIN_SHARE: Final = 0.1
_MAX_MARGIN: Final = 0.1

_deadline: ContextVar[float | None] = ContextVar("deadline", default=None)


class DeadlineExceeded(DomainError):
    """The caller has stopped waiting: nothing was done."""

    status_code = 504
    code = "deadline_exceeded"
    title = "Deadline exceeded"


def timeout_header(seconds: float) -> tuple[str, str]:
    """The header that tells an upstream the caller waits ``seconds``."""
    return TIMEOUT_HEADER, str(max(1, round(seconds * 1000)))


def accept_budget(scope: Scope) -> None:
    """Start this request's clock from its ``x-timeout-ms``, if it has a valid one.

    Each request runs in its own task, with its own context: nothing to reset.
    """
    raw = next((v for k, v in scope["headers"] if k == _HEADER), None)
    if raw is None or not raw.isdigit() or not 0 < int(raw) <= _MAX_MS:
        _deadline.set(None)
        return
    budget = int(raw) / 1000
    _deadline.set(time.monotonic() + budget - min(_MAX_MARGIN, budget * _MARGIN_SHARE))


def remaining() -> float | None:
    """Seconds left before the caller gives up (negative: it has), or None without a budget."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
