"""What an operator watches on the webhooks service (names other tools rely on).

``webhook_backlog_oldest_seconds`` is the first thing to look at: it grows
when deliveries fall behind, whatever the cause (endpoints down, the
dispatcher stuck, the database slow).

Outcomes of an attempt (``outcome``)::

    delivered   a 2xx answer
    failed      any other answer (3xx included: redirects are not followed)
    timeout     no answer in time
    refused     the egress policy refused the address (private, metadata...)
    error       no answer otherwise: DNS, connect, TLS, protocol, too large
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BACKLOG",
    "BACKLOG_OLDEST",
    "DELIVERIES",
    "DELIVERY_SECONDS",
    "ENDPOINTS_DISABLED",
    "EVENTS_FANNED_OUT",
    "attempt_bucket",
    "outcome_of",
]

DELIVERIES = Counter(
    "webhook_deliveries_total",
    "Delivery attempts, by outcome and attempt number (1, 2, 3, 4-6, 7+).",
    ["outcome", "attempt"],
)
DELIVERY_SECONDS = Histogram(
    "webhook_delivery_duration_seconds",
    "Time of one delivery attempt, from the request to the end of the answer.",
    ["outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)
BACKLOG = Gauge(
    "webhook_backlog", "Deliveries owed and neither delivered nor given up (state pending)."
)
BACKLOG_OLDEST = Gauge(
    "webhook_backlog_oldest_seconds",
    "How long the oldest due delivery has waited past its due time (0 when none is due).",
)
ENDPOINTS_DISABLED = Counter(
    "webhook_endpoints_disabled_total",
    "Endpoints disabled, by reason: failing (automatically) or owner.",
    ["reason"],
)
EVENTS_FANNED_OUT = Counter(
    "webhook_events_fanned_out_total",
    "Events owed to an endpoint (one per event and endpoint), by event type.",
    ["type"],
)


def attempt_bucket(attempt: int) -> str:
    """The bounded label of an attempt number."""
    if attempt <= 3:
        return str(attempt)
    return "4-6" if attempt <= 6 else "7+"


def outcome_of(status: int | None, error: str | None) -> str:
    """The ``outcome`` label of an attempt's result."""
    # An answer cut at the size cap still answered: its status decides.
    if status is not None and error in {None, "response_too_large"}:
        return "delivered" if 200 <= status < 300 else "failed"
    if error == "timeout":
        return "timeout"
    return "refused" if error == "refused_address" else "error"
