"""Through the gateway, concurrent redirects leave in batches, each answered for its own link.

A gateway of its own batches the redirects it sends to the link service
(gateway/lookups.py; its memory is off in tests, so every redirect takes the
hop), one batch out at a time so that visits arriving meanwhile must wait
and leave together. Hundreds of visits to many links at once must each get
their own link's target, none another's, while the visits travel together.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Infra, running_gateway
from tests.metrics import metric

LINKS = 40
VISITS = 400


CONNECTIONS = 100


async def _visit_on_one_connection(port: int, codes: list[str]) -> list[tuple[str, str, str]]:
    """Send every request at once on one connection (pipelined), then read the answers:
    (code, status line, location) each, in order."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(b"GET /%s HTTP/1.1\r\nhost: t\r\n\r\n" % c.encode() for c in codes))
    await writer.drain()
    answers = []
    for code in codes:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        await reader.readexactly(int(fields.get("content-length", "0")))
        answers.append((code, head[0], fields.get("location", "")))
    writer.close()
    await writer.wait_closed()
    return answers


async def _follow_all(port: int, targets: dict[str, str]) -> list[tuple[str, str, str]]:
    codes = random.Random(17).choices(list(targets), k=VISITS)
    per = VISITS // CONNECTIONS
    shares = [codes[i * per : (i + 1) * per] for i in range(CONNECTIONS)]
    answered = await asyncio.gather(*(_visit_on_one_connection(port, s) for s in shares))
    return [answer for answers in answered for answer in answers]


@pytest.fixture(scope="module")
def gateway_url(infra: Infra, link_url: str) -> Iterator[str]:
    with running_gateway(infra, link_url, link_batches_in_flight="1") as url:
        yield url


def test_concurrent_visits_are_batched_and_each_gets_its_own_target(gateway_url: str) -> None:
    targets = {}
    with httpx.Client(base_url=gateway_url, timeout=10) as client:
        for i in range(LINKS):
            url = f"https://example.com/batched/{i}"
            created = client.post("/api/v1/links", json={"url": url})
            assert created.status_code == 201, created.text
            targets[created.json()["code"]] = url
    visits_before = metric(gateway_url, "gateway_redirect_batch_visits_sum")
    batches_before = metric(gateway_url, "gateway_redirect_batch_visits_count")

    answers = asyncio.run(_follow_all(int(gateway_url.rsplit(":", 1)[1]), targets))

    assert len(answers) == VISITS
    for code, status_line, location in answers:
        assert status_line == "HTTP/1.1 302 Found", (code, status_line)
        assert location == targets[code]
    visits = metric(gateway_url, "gateway_redirect_batch_visits_sum") - visits_before
    batches = metric(gateway_url, "gateway_redirect_batch_visits_count") - batches_before
    assert visits == VISITS
    assert batches < VISITS / 2, f"{VISITS} visits in {batches:.0f} batches: hardly batched"
