"""Deliveries end to end: events on the topics, the session's webhooks service,
receivers on 127.0.0.1 that verify with the ``standardwebhooks`` library.

Each test makes its own users, links and receivers, so it sees only its own
deliveries however many others the service makes meanwhile.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.accounts import register
from tests.conftest import Infra
from tests.test_analytics_consumer import new_code
from tests.webhook_receiver import Received, receiver
from tests.webhooks_helpers import clicked_ids, create_endpoint, link_of, send_clicks, wait_for

pytestmark = pytest.mark.usefixtures("webhooks_url")


def types(requests: list[Received]) -> list[str]:
    return [orjson.loads(r.body)["type"] for r in requests]


def test_events_go_only_to_the_link_owners_endpoints_clicks_batched(
    infra: Infra, client: httpx.Client
) -> None:
    owner, stranger = register(client), register(client)
    with receiver() as mine, receiver() as theirs:
        endpoint = create_endpoint(client, owner, mine.url)
        create_endpoint(client, stranger, theirs.url)
        code = link_of(infra, owner.user_id)
        wait_for(mine.received, lambda r: len(r) >= 1)
        sent = send_clicks(infra, code, 30)
        got = wait_for(mine.received, lambda r: len(clicked_ids(r)) >= 30)
        time.sleep(0.5)  # room for a stray delivery to the stranger
        assert theirs.received() == []
    for request in got:
        Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert types(got)[0] == "link.created"
    assert sorted(clicked_ids(got)) == sorted(sent)
    # Clicks that arrive together go out together, not one request each.
    assert len(got) - 1 < len(sent) / 2


def test_a_click_before_its_link_is_known_waits_for_the_owner(
    infra: Infra, client: httpx.Client
) -> None:
    owner = register(client)
    with receiver() as hooks:
        create_endpoint(client, owner, hooks.url, event_types=["link.clicked"])
        code = new_code()
        sent = send_clicks(infra, code, 3)
        time.sleep(1)  # parked: nobody to send them to yet
        assert hooks.received() == []
        link_of(infra, owner.user_id, code)
        got = wait_for(hooks.received, lambda r: len(clicked_ids(r)) >= 3)
    assert sorted(clicked_ids(got)) == sorted(sent)


def test_failures_are_retried_on_the_schedule_and_each_attempt_recorded(
    infra: Infra, client: httpx.Client
) -> None:
    owner = register(client)
    with receiver() as hooks:
        hooks.statuses = [500, 503]
        endpoint = create_endpoint(client, owner, hooks.url)
        link_of(infra, owner.user_id)
        got = wait_for(hooks.received, lambda r: len(r) >= 3)
    assert len({r.headers["webhook-id"] for r in got}) == 1  # one message, three attempts
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(got)]
    # The schedule waits 0.5 s then 1 s (+-10 %, plus up to a 0.1 s poll).
    assert 0.4 < gaps[0] < 1.0, gaps
    assert 0.85 < gaps[1] < 1.6, gaps
    log = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries", headers=owner.bearer).json()
    attempts = log["items"][0]["attempts"]
    assert [a["status"] for a in attempts] == [500, 503, 200]
    assert [a["outcome"] for a in attempts] == ["failed", "failed", "delivered"]
    assert all(a["latency_seconds"] > 0 for a in attempts)


def test_an_endpoint_failing_long_enough_is_disabled_and_can_be_enabled_again(
    infra: Infra, client: httpx.Client
) -> None:
    owner = register(client)
    with receiver(status=500) as hooks:
        endpoint = create_endpoint(client, owner, hooks.url)
        path = f"/api/v1/webhooks/{endpoint['id']}"
        since = _now().isoformat()
        link_of(infra, owner.user_id)

        def read() -> dict[str, Any]:
            found: dict[str, Any] = client.get(path, headers=owner.bearer).json()
            return found

        disabled = wait_for(read, lambda e: not e["enabled"], within=20)
        assert disabled["enabled"] is False
        assert "HTTP 500" in disabled["disabled_reason"]
        tried = len(hooks.received())
        link_of(infra, owner.user_id)  # owed to nobody: the endpoint is off
        time.sleep(1)
        assert len(hooks.received()) == tried

        hooks.status = 200
        client.post(f"{path}/test", headers=owner.bearer)  # a test goes out even so
        tested = wait_for(hooks.received, lambda r: len(r) > tried)
        assert orjson.loads(tested[-1].body)["type"] == "webhook.test"
        tried += 1
        enabled = client.patch(path, json={"enabled": True}, headers=owner.bearer).json()
        assert enabled["enabled"] is True
        assert enabled["disabled_reason"] is None
        again = client.post(f"{path}/redeliver", json={"since": since}, headers=owner.bearer)
        assert again.json() == {"redelivered": 1}
        got = wait_for(hooks.received, lambda r: len(r) > tried)
    assert got[-1].headers["webhook-id"] == got[0].headers["webhook-id"]


def test_a_hanging_endpoint_does_not_delay_another(
    infra: Infra, client: httpx.Client, evidence: Any
) -> None:
    owner = register(client)
    with receiver() as slow, receiver() as fast:
        slow.hang_seconds = 1.5
        create_endpoint(client, owner, slow.url, event_types=["link.created"])
        create_endpoint(client, owner, fast.url, event_types=["link.created"])
        started = time.monotonic()
        for _ in range(10):
            link_of(infra, owner.user_id)
        quick = wait_for(fast.received, lambda r: len(r) >= 10)
        fast_done = quick[-1].at - started
        slow_so_far = len(slow.received())
        wait_for(slow.received, lambda r: len(r) >= 10)
        slow_done = time.monotonic() - started
    evidence(
        "per-endpoint isolation",
        f"10 deliveries each: the fast endpoint had all in {fast_done:.2f} s,"
        f" the hanging one (1.5 s each, 2 at a time) in {slow_done:.2f} s",
    )
    assert len(quick) == 10
    assert slow_so_far <= 6  # two at a time, 1.5 s each: it was still going
    assert fast_done < 3.0
    assert slow_done > fast_done + 2


def test_a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends(
    client: httpx.Client,
) -> None:
    owner = register(client)
    with receiver() as hooks:
        endpoint = create_endpoint(client, owner, hooks.url)
        path = f"/api/v1/webhooks/{endpoint['id']}"
        old = endpoint["secret"]
        rotated = client.post(
            f"{path}/secret/rotate", json={"overlap_seconds": 2}, headers=owner.bearer
        ).json()
        new = rotated["secret"]
        assert new != old
        client.post(f"{path}/test", headers=owner.bearer)
        during = wait_for(hooks.received, lambda r: len(r) >= 1)[0]
        time.sleep(2.2)
        client.post(f"{path}/test", headers=owner.bearer)
        after = wait_for(hooks.received, lambda r: len(r) >= 2)[1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


def test_one_delivery_is_sent_again_under_the_same_id(client: httpx.Client) -> None:
    owner = register(client)
    with receiver() as hooks:
        endpoint = create_endpoint(client, owner, hooks.url)
        path = f"/api/v1/webhooks/{endpoint['id']}"
        message = client.post(f"{path}/test", headers=owner.bearer).json()["id"]
        wait_for(hooks.received, lambda r: len(r) >= 1)
        wait_for(
            lambda: client.get(f"{path}/deliveries/{message}", headers=owner.bearer).json(),
            lambda d: d["state"] == "delivered",
        )
        again = client.post(f"{path}/deliveries/{message}/redeliver", headers=owner.bearer)
        assert again.status_code == 202
        got = wait_for(hooks.received, lambda r: len(r) >= 2)
    assert [r.headers["webhook-id"] for r in got] == [message, message]


def test_deliveries_are_counted_in_the_metrics(webhooks_url: str) -> None:
    text = httpx.get(f"{webhooks_url}/metrics").text
    for name in (
        "webhook_deliveries_total",
        "webhook_delivery_duration_seconds",
        "webhook_backlog",
        "webhook_backlog_oldest_seconds",
        "webhook_endpoints_disabled_total",
        "webhook_events_fanned_out_total",
    ):
        assert f"# TYPE {name} " in text, name


def _now() -> datetime:
    return datetime.now(UTC)
