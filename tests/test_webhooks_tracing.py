"""A link event's trace reaches the outbound webhook call.

A webhooks service with tracing on (OTLP to tests/otlp_receiver.py) runs on
a database and consumer groups of its own, so that it alone owes the event.
The event is put on the links topic with a ``traceparent`` header, as the
link service's relay sends it; the delivery's span continues that trace and
the request carries it to the receiver.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from infra.devstack.processes import ensure_database, free_port
from infra.devstack.stack import INTERNAL_AUTH_KEY, database_url
from services.chassis.events import LINKS_TOPIC
from services.chassis.identity import GatewaySigner, Identity
from tests.conftest import Infra, running_service
from tests.otlp_receiver import OtlpReceiver
from tests.test_analytics_consumer import link_changed, new_code
from tests.webhook_receiver import receiver
from tests.webhooks_fixtures import WEBHOOKS_TEST_SETTINGS
from tests.webhooks_helpers import wait_for

TRACE_ID = uuid.uuid4().hex
TRACEPARENT = f"00-{TRACE_ID}-{uuid.uuid4().hex[:16]}-01"


async def publish_traced(infra: Infra, owner_id: str) -> None:
    code = new_code()
    event = link_changed(code, "link.created", owner_id, datetime.now(UTC))
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            LINKS_TOPIC,
            orjson.dumps(event),
            key=code.encode(),
            headers=[("traceparent", TRACEPARENT.encode())],
        )
    finally:
        await producer.stop()


def signed(path: str, owner_id: str) -> dict[str, str]:
    """The headers the gateway would add for ``owner_id`` calling POST ``path``."""
    signer = GatewaySigner(INTERNAL_AUTH_KEY.encode())
    identity = Identity(owner_id, "jwt", "127.0.0.1")
    return {k.decode(): v.decode() for k, v in signer.headers("POST", path.encode(), identity)}


def test_the_delivery_continues_the_trace_of_the_event(infra: Infra) -> None:
    name = "webhooks_traced"
    ensure_database(infra.ports.postgres, name, name, name)
    owner_id = str(uuid.uuid4())
    with OtlpReceiver() as spans, receiver() as hooks, ExitStack() as running:
        # Set only while it starts, so no other test's process sees them.
        with pytest.MonkeyPatch.context() as env:
            env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", spans.url)
            env.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
            url = running.enter_context(
                running_service(
                    infra,
                    "webhooks",
                    port=free_port(),
                    database_url=database_url(infra.ports, name),
                    consumer_group="traced-" + uuid.uuid4().hex[:8],
                    **WEBHOOKS_TEST_SETTINGS,
                )
            )
        path = "/api/v1/webhooks"
        made = httpx.post(
            url + path,
            json={"url": hooks.url, "event_types": ["link.created"]},
            headers=signed(path, owner_id),
        )
        assert made.status_code == 201, made.text
        asyncio.run(publish_traced(infra, owner_id))
        got = wait_for(hooks.received, lambda r: len(r) >= 1, within=40)
        found = spans.wait_for(
            lambda s: any(x.name == "POST webhook" and x.trace_id == TRACE_ID for x in s)
        )
    assert got[0].headers["traceparent"].split("-")[1] == TRACE_ID
    post = next(x for x in found if x.name == "POST webhook" and x.trace_id == TRACE_ID)
    assert post.service == "webhooks"
    assert post.kind == "CLIENT"
    assert post.attributes["http.response.status_code"] == 200
