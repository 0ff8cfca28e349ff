"""What the gateway forwards of a request and relays of an answer: the header rules in one place."""

from __future__ import annotations

from gateway.stale import STALE_TTL_HEADER
from services.chassis.context import REQUEST_ID_HEADER
from services.chassis.deadline import TIMEOUT_HEADER
from services.chassis.events import CLICK_ID_HEADER

__all__ = ["FORWARDING", "HOP_BY_HOP", "REPLAY_ON", "RESPONSE_DROP"]

# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection, never forwarded.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Set by the gateway from what it saw; a client's own values are discarded,
# so a service can trust them (issue: trusted proxies for an edge in front).
FORWARDING = frozenset(
    {
        b"host",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        b"x-real-ip",
        REQUEST_ID_HEADER.encode(),
        CLICK_ID_HEADER.encode(),
        TIMEOUT_HEADER.encode(),  # how long the gateway waits, not the client
        b"content-length",
    }
)
# Added again by this process's own server and middleware.
RESPONSE_DROP = HOP_BY_HOP | {
    b"date",
    b"server",
    REQUEST_ID_HEADER.encode(),
    STALE_TTL_HEADER,  # for the gateway's stale cache, not for clients
}
# Upstream answers after which a stale redirect is the better reply.
REPLAY_ON = frozenset({502, 503, 504})
