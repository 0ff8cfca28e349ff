"""Tracing and log configuration, in process: the ``OTEL_*`` rules, the log
fields a span adds, redaction, and what the local stack sets (issue 6).

Traces through the real processes are in tests/test_tracing.py.
"""

from __future__ import annotations

import logging

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext

from infra.devstack.stack import Ports, service_env
from services.chassis.logging import JsonFormatter
from services.chassis.tracing import start_tracing

CLIENT_IP = "203.0.113.77"


def test_log_fields_named_for_secrets_or_addresses_are_redacted() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "login", None, None)
    record.__dict__.update({"client_ip": CLIENT_IP, "Password": "hunter2", "user_id": "u1"})
    line = orjson.loads(JsonFormatter("link").format(record))
    assert line["client_ip"] == line["Password"] == "[redacted]"
    assert line["user_id"] == "u1"


def test_log_lines_carry_the_current_span() -> None:
    tracer = TracerProvider().get_tracer(__name__)
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "inside", None, None)
    with tracer.start_as_current_span("work") as span:
        line = orjson.loads(JsonFormatter("link").format(record))
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in orjson.loads(JsonFormatter("link").format(record))


def test_log_lines_of_an_unsampled_request_carry_no_trace_ids() -> None:
    # What a request dropped by the sampler runs in: a valid context, not sampled.
    unsampled = NonRecordingSpan(SpanContext(0x4BF9, 0x00F0, is_remote=False))
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "inside", None, None)
    with trace.use_span(unsampled):
        line = orjson.loads(JsonFormatter("link").format(record))
    assert "trace_id" not in line
    assert "span_id" not in line


@pytest.mark.parametrize(
    "environ",
    [
        {},  # no endpoint: the SDK would export to localhost:4318; we do not trace
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"},
    ],
)
def test_tracing_is_off_unless_an_exporter_has_somewhere_to_send(
    environ: dict[str, str],
) -> None:
    assert start_tracing("link", environ) is None


def test_an_unknown_exporter_stops_the_process() -> None:
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        start_tracing("link", {"OTEL_TRACES_EXPORTER": "zipkin"})


def test_the_local_stack_names_each_process_and_leaves_tracing_to_the_shell() -> None:
    env = service_env(Ports.free())
    assert {name: e["OTEL_SERVICE_NAME"] for name, e in env.items()} == {
        name: name for name in ("link", "user", "analytics", "webhooks", "gateway")
    }
    # No endpoint of its own: traces are off unless the shell's OTEL_* give one.
    assert not any(k.startswith("OTEL_EXPORTER") for e in env.values() for k in e)
