"""JSON log lines: one object per line, with the service, request id and trace ids.

Every line has ``ts``, ``level``, ``service``, ``logger`` and ``msg``; inside a
request ``request_id``; inside a sampled span ``trace_id`` and ``span_id`` (the
W3C hex forms Jaeger searches by). Only sampled: an id written for a trace
nobody kept would lead to nothing, and ``request_id`` already ties a
request's lines together across services. Extras passed with
``extra=`` become fields, except those whose name says they hold a secret
or a client address: a log line is read by more people than the data.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import trace

from services.chassis.context import request_id_var

__all__ = ["REDACTED_FIELDS", "JsonFormatter", "configure_logging", "line_head"]

# Attributes every LogRecord has; anything else was passed in ``extra=``.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
# Extras never written as given, whoever passes them (lower-case names).
REDACTED_FIELDS = frozenset(
    {
        "authorization",
        "password",
        "token",
        "access_token",
        "refresh_token",
        "api_key",
        "secret",
        "cookie",
        "ip",
        "client_ip",
        "x-forwarded-for",
        "x-real-ip",
    }
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object, extras included as fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = line_head(
            record.created, record.levelname.lower(), self.service, record.name, record.getMessage()
        )
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = "[redacted]" if key.lower() in REDACTED_FIELDS else value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class _Timestamps:
    """ISO 8601 in UTC to the millisecond, as ``datetime.isoformat`` writes it;
    the date and time of day formatted once a second, not once a line."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def format(self, created: float) -> str:
        second = int(created)
        # Rounded to the microsecond first, as datetime does, then cut.
        micros = round((created - second) * 1e6)
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        if second != self._second:
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._prefix}.{micros // 1000:03d}+00:00"


_timestamps = _Timestamps()


def line_head(created: float, level: str, service: str, logger: str, msg: str) -> dict[str, Any]:
    """The fields every line starts with: time, level, service, logger and
    message, then the request id and, if sampled, the trace ids of the current context."""
    entry: dict[str, Any] = {
        "ts": _timestamps.format(created),
        "level": level,
        "service": service,
        "logger": logger,
        "msg": msg,
    }
    request_id = request_id_var.get()
    if request_id is not None:
        entry["request_id"] = request_id
    span = trace.get_current_span().get_span_context()
    if span.trace_flags.sampled:
        entry["trace_id"] = format(span.trace_id, "032x")
        entry["span_id"] = format(span.span_id, "016x")
    return entry


def configure_logging(service: str, level: str) -> None:
    """Send every logger's records to stdout as JSON; called once at startup."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log is replaced by ours (cheaper, JSON, request id).
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # Libraries that log every request or every reconnect at INFO.
    for name in ("aiokafka", "httpx"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
