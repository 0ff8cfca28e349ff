"""The session's webhooks service, with a schedule short enough to watch.

Retries after 0.5, 1 and 1.5 s (four attempts), endpoints disabled after
2.5 s of failures, requests cut at 2 s: every rule is the production rule,
only faster. Receivers run on 127.0.0.1, which the policy allows here.

2.5 s, not 3: the fourth attempt comes 3 s after the first, give or take
the 10 % jitter, so with 3 s a run could give up before disabling; 2.5 s
lies between the third attempt (1.5 s, at most 1.65) and the fourth (at
least 2.7).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Infra, running_service

__all__ = ["WEBHOOKS_TEST_SETTINGS", "webhooks_url"]

WEBHOOKS_TEST_SETTINGS = {
    "retry_schedule_seconds": "0,0.5,1,1.5",
    "retry_jitter": "0.1",
    "disable_after_seconds": "2.5",
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
