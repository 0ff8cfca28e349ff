"""Deliveries to addresses the service must not reach, end to end.

The session's webhooks service allows 127.0.0.0/8 only (receivers of the
other tests run there). An endpoint may be registered at any public-looking
URL; where it leads is checked when a delivery connects (services/webhooks/
egress.py, whose own tests cover rebinding, names that resolve to loopback
and every range, with a resolver they control). Here the refusal is what an
owner sees: the attempt in the delivery log, outcome ``refused``, no status.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.accounts import Account, register
from tests.conftest import Infra
from tests.webhooks_helpers import create_endpoint, link_of, wait_for

pytestmark = pytest.mark.usefixtures("webhooks_url")

REFUSED = [
    "http://10.0.0.1/hooks",  # RFC 1918
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[::1]:8080/hooks",  # loopback outside the allowed 127.0.0.0/8
    "http://metadata.google.internal/computeMetadata/v1/",
]


def _attempts(client: httpx.Client, account: Account, endpoint: dict[str, Any]) -> list[Any]:
    response = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries", headers=account.bearer)
    assert response.status_code == 200, response.text
    return [attempt for item in response.json()["items"] for attempt in item["attempts"]]


@pytest.mark.parametrize("url", REFUSED)
def test_a_delivery_to_a_private_or_metadata_address_is_refused_at_connect(
    infra: Infra, client: httpx.Client, url: str
) -> None:
    owner = register(client)
    endpoint = create_endpoint(client, owner, url, event_types=["link.created"])
    link_of(infra, owner.user_id)
    attempts = wait_for(lambda: _attempts(client, owner, endpoint), lambda a: len(a) >= 1)
    assert attempts, "no attempt recorded"
    assert attempts[0]["outcome"] == "refused", attempts[0]
    assert attempts[0]["error"] == "refused_address"
    assert attempts[0]["status"] is None
