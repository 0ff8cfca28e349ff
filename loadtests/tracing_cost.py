"""What the tracing code costs one request, in CPU, measured in a process of its own.

Whole-stack throughput on a shared 2-core machine moves by more than
tracing costs (docs/performance-tracing.md shows by how much), so this
measures the tracing code alone, steadily: a child process per setting,
configured by the same ``OTEL_*`` variables as a service, runs the code a
redirect runs at the edge (the middleware with its sampling decision, the
upstream-client wrapper, queueing a click event, a log line's trace-id
look-up) around do-nothing stand-ins for the app and the network, many
times. Its CPU time (every
thread: the batch processor's encoding and export included, to a receiver
in the parent that discards) over the requests is the cost per request.

    python -m loadtests.tracing_cost            # prints the section
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.devstack.stack import REPO_ROOT
from services.chassis.accesslog import AccessLog
from services.chassis.tracing import TracingMiddleware, start_tracing
from services.chassis.tracing_http import traced_transport
from services.chassis.tracing_kafka import message_context
from tests.otlp_receiver import OtlpReceiver

__all__ = ["SETTINGS", "measure_all", "render"]

# Label, OTEL_TRACES_SAMPLER_ARG (None: no endpoint, so tracing is off).
SETTINGS: tuple[tuple[str, str | None], ...] = (("off", None), ("1 %", "0.01"), ("100 %", "1.0"))
REQUESTS = 20_000
# A hot redirect answered from the gateway's cache, and one through the link
# service (an upstream call, with its traceparent).
PATHS = ("cached", "link")
_DISCARD = open(os.devnull, "w")  # noqa: SIM115 - for the process's life
_HEADERS = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")]


class _Upstream(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(302)


def _app(client: httpx.AsyncBaseTransport | None, access: AccessLog) -> ASGIApp:
    """A redirect's tracing work, minus the work itself: route, the upstream
    call if ``client`` (none from the gateway's cache), click, log line."""
    request = httpx.Request("GET", "http://127.0.0.1:8001/abc1234")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route_template"] = "/{code}"
        if client is not None:
            await client.handle_async_request(request)
        message_context("clicks")
        access.write("GET", "/abc1234", 302, 0.1)
        await send({"type": "http.response.start", "status": 302, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


async def _drive(app: ASGIApp, requests: int) -> None:
    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        return None

    for _ in range(requests):
        scope = {"type": "http", "method": "GET", "path": "/abc1234", "headers": list(_HEADERS)}
        await app(scope, receive, send)


def _child(requests: int, path: str) -> None:
    """Runs in the child: configure as a service would, then time ``requests`` requests."""
    provider = start_tracing("bench")
    client = traced_transport(_Upstream()) if path == "link" else None
    app = _app(client, AccessLog("bench", lambda: _DISCARD))
    if provider is not None:  # as serve() does
        app = TracingMiddleware(app, trust_incoming=False)
    asyncio.run(_drive(app, requests // 10))  # warm up
    started = time.process_time()
    asyncio.run(_drive(app, requests))
    if provider is not None:
        provider.shutdown()  # what is still queued is exported, and counted
    print(json.dumps({"us": (time.process_time() - started) / requests * 1e6}))


def measure_all(requests: int = REQUESTS, repeat: int = 3) -> dict[str, dict[str, float]]:
    """CPU µs per request for each setting and path, the best of ``repeat`` children.

    Children take turns (every setting and path once, ``repeat`` times), so
    a slow minute of a shared machine does not fall on one setting only.
    """
    runs: dict[str, dict[str, list[float]]] = {}
    with OtlpReceiver(keep=False) as receiver:
        for _ in range(repeat):
            for label, ratio in SETTINGS:
                env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
                if ratio is not None:
                    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
                    env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
                    env["OTEL_TRACES_SAMPLER_ARG"] = ratio
                    # Room for every span: the loop makes them faster than a service
                    # would, and a full queue drops them, which would hide their cost.
                    env["OTEL_BSP_MAX_QUEUE_SIZE"] = str(requests * 4)
                for path in PATHS:
                    argv = [sys.executable, "-m", "loadtests.tracing_cost"]
                    argv += ["--child", str(requests), path]
                    out = subprocess.run(  # noqa: S603 - our own interpreter and module
                        argv, env=env, cwd=REPO_ROOT, capture_output=True, check=True, text=True
                    ).stdout
                    runs.setdefault(label, {}).setdefault(path, []).append(json.loads(out)["us"])
    return {label: {path: min(us) for path, us in paths.items()} for label, paths in runs.items()}


def render(costs: dict[str, dict[str, float]]) -> str:
    off = costs["off"]
    rows = [
        "| tracing | cached redirect | added by tracing | through the link service | added |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, us in costs.items():
        cells = [f"{us[p]:.1f} µs | {us[p] - off[p]:+.1f} µs" for p in PATHS]
        rows.append(f"| {label} | {' | '.join(cells)} |")
    table = "\n".join(rows)
    return f"""## The tracing code alone, in CPU per request

loadtests/tracing_cost.py: one process per setting, configured by the
same `OTEL_*` variables as a service, runs what a redirect runs of the
tracing code at the edge (the sampling decision and server span around the
app, the click event's creation context, one JSON log line, and through
the link service the upstream call's client span and `traceparent`)
{REQUESTS:,} times around do-nothing stand-ins; CPU time of the whole process
(the batch processor's encoding and OTLP export included) over the
requests, best of 3, with a span queue large enough that no span is
dropped. "off" is the same code with no endpoint: no middleware, no spans,
and the log line and click queueing pay their `None` checks. A kept request
makes two spans from the cache, three through the link service; a dropped
one none, only the edge's unsampled context (and the `traceparent` that
tells the link service). Under load the same code costs a few times more
per request than in this loop (caches shared with everything else the
process does): compare settings here, not with the stack's figures.

{table}"""


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(int(sys.argv[2]), sys.argv[3])
    else:
        print(render(measure_all()))
