"""Traces across HTTP and Kafka, and log lines that carry them (issue 6).

The gateway, the link service and the analytics service run as real
processes, configured only by ``OTEL_*`` variables, and export over OTLP/HTTP
to a real receiver (tests/otlp_receiver.py). Two gateways share one link
service: ``full`` samples every request, ``ratio`` a quarter of them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from infra.devstack.processes import free_port
from services.chassis.tracing_kafka import BATCH_SIZE
from tests.conftest import Infra, running_gateway, running_service
from tests.evidence import Evidence
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan, render_tree

RATIO = 0.25
# A client address the gateway learns from a trusted proxy, and credentials:
# none may reach a log line.
CLIENT_IP = "203.0.113.77"
SECRETS = ("Bearer tok-" + uuid.uuid4().hex, "sk_" + uuid.uuid4().hex, "pw-" + uuid.uuid4().hex)


@dataclass(frozen=True)
class Traced:
    receiver: OtlpReceiver
    link: str
    full: str  # gateway URLs
    ratio: str
    logs: dict[str, Path]


@pytest.fixture(scope="module")
def traced(infra: Infra) -> Iterator[Traced]:
    ports = {name: free_port() for name in ("link", "analytics", "full", "ratio")}
    logs = {
        "link": infra.workdir / f"link-{ports['link']}.log",
        "analytics": infra.workdir / f"analytics-{ports['analytics']}.log",
        "full": infra.workdir / f"gateway-{ports['full']}.log",
    }
    with OtlpReceiver() as receiver, ExitStack() as running:
        # The variables are read from the environment the processes inherit;
        # set only while they start, so no other test's process sees them.
        with pytest.MonkeyPatch.context() as env:
            env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
            env.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
            env.setenv("OTEL_TRACES_SAMPLER_ARG", "1.0")
            env.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # ms: spans arrive quickly
            link = running.enter_context(
                running_service(infra, "link", port=ports["link"], log_level="INFO")
            )
            running.enter_context(
                running_service(
                    infra,
                    "analytics",
                    port=ports["analytics"],
                    log_level="INFO",
                    # Its own group: every click partition is this process's.
                    consumer_group="tracing-" + uuid.uuid4().hex[:8],
                )
            )
            env.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=full")
            full = running.enter_context(
                running_gateway(
                    infra,
                    link,
                    port=ports["full"],
                    log_level="INFO",
                    trusted_proxies="127.0.0.1/32",
                )
            )
            env.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=ratio")
            env.setenv("OTEL_TRACES_SAMPLER_ARG", str(RATIO))
            ratio = running.enter_context(running_gateway(infra, link, port=ports["ratio"]))
        yield Traced(receiver, link, full, ratio, logs)


def new_code(gateway: str) -> str:
    response = httpx.post(f"{gateway}/api/v1/links", json={"url": "https://example.com/t"})
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


def log_lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def access_line(path: Path, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
    """The one access line of ``request_id``: written once the response is sent, so awaited."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [
            line
            for line in log_lines(path)
            if line.get("logger") == "access" and line.get("request_id") == request_id
        ]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == 1, f"one access line for {request_id} in {path.name}"
    return lines[0]


@pytest.fixture(scope="module")
def redirect(traced: Traced) -> tuple[str, str]:
    """One redirect through the fully sampled gateway: (its request id, its trace id)."""
    code = new_code(traced.full)
    response = httpx.get(f"{traced.full}/{code}", follow_redirects=False)
    assert response.status_code == 302
    request_id = response.headers["x-request-id"]
    trace_id = access_line(traced.logs["full"], request_id)["trace_id"]
    return request_id, str(trace_id)


def test_one_trace_spans_gateway_link_kafka_and_consumer(
    traced: Traced, redirect: tuple[str, str], evidence: Evidence
) -> None:
    _, trace_id = redirect

    def is_batch(span: ReceivedSpan) -> bool:
        return BATCH_SIZE in span.attributes

    def processed_here(span: ReceivedSpan) -> bool:
        return span.trace_id == trace_id and span.name == "process clicks" and not is_batch(span)

    spans = traced.receiver.wait_for(
        # Its batch's database spans may come first: they can be in this trace too.
        lambda spans: any(processed_here(s) for s in spans),
        timeout=45,  # the consumer first joins its group and reads the topic's history
    )
    trace = {s.span_id: s for s in spans if s.trace_id == trace_id and not is_batch(s)}

    def one(service: str, name: str, kind: str) -> ReceivedSpan:
        found = [s for s in trace.values() if (s.service, s.name, s.kind) == (service, name, kind)]
        tree = [(s.service, s.name, s.kind, s.span_id, s.parent_span_id) for s in trace.values()]
        assert len(found) == 1, (service, name, kind, tree)
        return found[0]

    edge = one("gateway", "GET /{code}", "SERVER")
    assert edge.parent_span_id == ""  # the trace starts at the edge
    assert edge.attributes["http.route"] == "/{code}"
    assert edge.attributes["http.response.status_code"] == 302
    upstream_call = one("gateway", "GET", "CLIENT")
    served = one("link", "GET /{code}", "SERVER")
    created = one("link", "create clicks", "PRODUCER")
    processed = one("analytics", "process clicks", "CONSUMER")
    # gateway -> link over HTTP, link -> analytics through a Kafka header.
    assert upstream_call.parent_span_id == edge.span_id
    assert served.parent_span_id == upstream_call.span_id
    assert created.parent_span_id == served.span_id
    assert processed.parent_span_id == created.span_id
    # The cache lookup on the way, by the Redis instrumentation.
    assert any(
        s.service == "link" and s.parent_span_id == served.span_id
        for s in trace.values()
        if s.kind == "CLIENT"
    )
    # The batches that carried the event, to the broker and out of it, link
    # to its creation, and each is a child of its first sampled event.
    carried = (trace_id, created.span_id)
    (batch_link,) = processed.links
    spans = traced.receiver.wait_for(lambda spans: any(s.span_id == batch_link[1] for s in spans))
    batches = [s for s in spans if is_batch(s) and carried in s.links]
    assert sorted((s.service, s.name, s.kind) for s in batches) == [
        ("analytics", "process clicks", "CONSUMER"),
        ("link", "send clicks", "CLIENT"),
    ]
    for batch in batches:
        assert (batch.trace_id, batch.parent_span_id) == batch.links[0]
    # The per-event span links to its batch's span, which holds the database writes.
    (consumed,) = [s for s in batches if s.service == "analytics"]
    assert (consumed.trace_id, consumed.span_id) == batch_link
    assert any(s.parent_span_id == consumed.span_id for s in spans), "database spans"
    evidence(
        f"one trace, gateway -> link -> Kafka -> analytics ({trace_id})",
        render_tree(trace.values()),
    )


def test_a_link_change_reaches_the_consumer_in_the_trace_of_its_request(
    traced: Traced,
) -> None:
    """Through the outbox: the row keeps the request's context, the relay
    (another task, later) sends it as a header."""
    response = httpx.post(f"{traced.full}/api/v1/links", json={"url": "https://example.com/o"})
    assert response.status_code == 201, response.text
    trace_id = access_line(traced.logs["full"], response.headers["x-request-id"])["trace_id"]

    def in_trace(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        return [s for s in spans if s.trace_id == trace_id and BATCH_SIZE not in s.attributes]

    wanted = (
        ("link", "POST /api/v1/links", "SERVER"),
        ("link", "create links", "PRODUCER"),
        ("analytics", "process links", "CONSUMER"),
    )

    def named(spans: list[ReceivedSpan]) -> dict[tuple[str, str, str], ReceivedSpan]:
        return {(s.service, s.name, s.kind): s for s in in_trace(spans)}

    # Each service exports on its own schedule: the consumer's span can arrive first.
    spans = in_trace(
        traced.receiver.wait_for(lambda spans: set(wanted) <= named(spans).keys(), timeout=45)
    )
    tree = [(s.service, s.name, s.kind, s.span_id, s.parent_span_id) for s in spans]
    served, created, processed = (named(spans)[key] for key in wanted)
    assert created.parent_span_id == served.span_id, tree
    assert processed.parent_span_id == created.span_id, tree


def test_log_lines_carry_the_trace_of_their_request(
    traced: Traced, redirect: tuple[str, str]
) -> None:
    request_id, trace_id = redirect
    at_edge = access_line(traced.logs["full"], request_id)
    at_link = access_line(traced.logs["link"], request_id)
    assert at_link["trace_id"] == at_edge["trace_id"] == trace_id
    assert at_link["service"] == "link"
    assert at_edge["service"] == "gateway"
    for line in (at_edge, at_link):
        assert {"ts", "level", "service", "request_id", "trace_id", "span_id"} <= line.keys()
    spans = traced.receiver.wait_for(
        lambda spans: any(s.span_id == at_link["span_id"] for s in spans)
    )
    (span,) = [s for s in spans if s.span_id == at_link["span_id"]]
    assert (span.service, span.name, span.trace_id) == ("link", "GET /{code}", trace_id)


def test_sampling_follows_the_edges_ratio(traced: Traced) -> None:
    code = new_code(traced.ratio)
    redirects = 200
    with httpx.Client(base_url=traced.ratio) as client:
        for _ in range(redirects):
            assert client.get(f"/{code}").status_code == 302

    def kept_at_edge(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        return [s for s in spans if s.instance == "ratio" and s.kind == "SERVER"]

    traced.receiver.wait_for(lambda spans: len(kept_at_edge(spans)) >= 10)
    spans = traced.receiver.wait_for(lambda _: False, timeout=1.0)  # the last batches
    kept = kept_at_edge(spans)
    # Binomial(200, 0.25): 50 expected, 20 and 80 are 4.5 standard deviations away.
    assert 20 <= sum(1 for s in kept if s.name == "GET /{code}") <= 80
    # Requests that came through the other gateways of this module.
    elsewhere = {s.trace_id for s in spans if s.service == "gateway" and s.instance != "ratio"}
    at_link = {s.trace_id for s in spans if s.service == "link" and s.kind == "SERVER"}
    # The link service samples everything it starts itself, yet follows the
    # edge: a request is in its spans exactly when the edge kept it.
    assert at_link - elsewhere == {s.trace_id for s in kept}


def test_the_edge_ignores_a_clients_trace_context(traced: Traced) -> None:
    code = new_code(traced.full)
    forged = uuid.uuid4().hex
    headers = {
        "traceparent": f"00-{forged}-{uuid.uuid4().hex[:16]}-01",
        "tracestate": "forged=1",
    }
    response = httpx.get(f"{traced.full}/{code}", headers=headers)
    assert response.status_code == 302
    trace_id = access_line(traced.logs["full"], response.headers["x-request-id"])["trace_id"]
    assert trace_id != forged

    def served_here(span: ReceivedSpan) -> bool:
        return span.trace_id == trace_id and span.kind == "SERVER" and span.service == "link"

    # The server span ends last, and may be exported after its children.
    spans = traced.receiver.wait_for(lambda spans: any(served_here(s) for s in spans))
    assert all(s.trace_id != forged for s in spans)
    # Nor does the client's tracestate reach the services behind the edge.
    (served,) = [s for s in spans if served_here(s)]
    assert served.trace_state == ""


def test_no_secrets_or_client_addresses_in_logs(traced: Traced) -> None:
    bearer, api_key, password = SECRETS
    code = new_code(traced.full)
    seen = {"x-forwarded-for": CLIENT_IP, "user-agent": "tracing-tests"}
    with httpx.Client(base_url=traced.full, headers=seen) as client:
        ids = [
            client.get(f"/{code}").headers["x-request-id"],
            client.get("/api/v1/links", headers={"authorization": bearer}).headers["x-request-id"],
            client.get("/api/v1/links", headers={"x-api-key": api_key}).headers["x-request-id"],
            client.post(
                "/api/v1/auth/login", json={"email": "a@example.com", "password": password}
            ).headers["x-request-id"],
        ]
    for request_id in ids:  # the lines exist, so their absence below means something
        access_line(traced.logs["full"], request_id)
    for path in traced.logs.values():
        text = path.read_text()
        assert CLIENT_IP not in text, path.name
        for secret in (bearer.removeprefix("Bearer "), api_key, password):
            assert secret not in text, path.name


def test_spans_still_queued_are_exported_when_a_process_stops(traced: Traced, infra: Infra) -> None:
    def mine(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
        return [s for s in spans if s.instance == "stopping" and s.name == "GET /{code}"]

    code = new_code(traced.full)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", traced.receiver.url)
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")  # ten minutes: only the stop exports
        env.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=stopping")
        with running_gateway(infra, traced.link) as gateway:
            env.undo()
            assert httpx.get(f"{gateway}/{code}").status_code == 302
            assert mine(traced.receiver.wait_for(lambda _: False, timeout=1.0)) == []
        # SIGTERM: uvicorn drains, then serve() shuts the provider down.
    assert len(mine(traced.receiver.wait_for(lambda spans: bool(mine(spans))))) == 1


def test_background_chores_start_no_traces(traced: Traced) -> None:
    # Meanwhile the outbox relay has polled Postgres several times a second,
    # and readiness probes have called the gateways' upstreams, all sampled.
    spans = traced.receiver.wait_for(lambda _: False, timeout=1.0)
    assert any(s.kind == "CLIENT" and s.parent_span_id for s in spans)  # inside requests: kept
    assert [s for s in spans if s.kind == "CLIENT" and not s.parent_span_id] == []
