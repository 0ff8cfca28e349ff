"""The session's webhooks service, with a schedule short enough to watch.

Retries after 0.5, 1 and 1.5 s (four attempts), endpoints disabled after
3 s of failures, requests cut at 2 s: every rule is the production rule,
only faster. Receivers run on 127.0.0.1, which the policy allows here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Infra, running_service

__all__ = ["WEBHOOKS_TEST_SETTINGS", "webhooks_url"]

WEBHOOKS_TEST_SETTINGS = {
    "retry_schedule_seconds": "0,0.5,1,1.5",
    "retry_jitter": "0.1",
    "disable_after_seconds": "3",
    "poll_interval_seconds": "0.1",
    "connect_timeout_seconds": "1",
    "total_timeout_seconds": "2",
    "batch_timeout_ms": "100",
}


@pytest.fixture(scope="session")
def webhooks_url(infra: Infra) -> Iterator[str]:
    # On the port the session gateway routes /api/v1/webhooks to.
    with running_service(
        infra, "webhooks", port=infra.ports.webhooks, **WEBHOOKS_TEST_SETTINGS
    ) as url:
        yield url
