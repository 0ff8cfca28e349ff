"""Link stats through the gateway, from real redirects.

Links are created and followed through the session's gateway; the link
service publishes a click per redirect and a ``LinkChanged`` per change, and
the session's analytics service counts them. Counting is asynchronous, so
tests poll the stats until they add up (with a deadline).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.accounts import Account, register
from tests.stats import poll, total

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.fixture(autouse=True)
def _analytics(analytics_url: str) -> None:
    """Every test here needs the session's analytics service running."""


def create(client: httpx.Client, account: Account | None) -> str:
    headers = account.bearer if account else {}
    response = client.post("/api/v1/links", json={"url": "https://example.com/s"}, headers=headers)
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


def follow(client: httpx.Client, code: str, user_agent: str, referer: str | None = None) -> None:
    headers = {"user-agent": user_agent, **({"referer": referer} if referer else {})}
    assert client.get(f"/{code}", headers=headers).status_code == 302


def named(items: list[dict[str, Any]], key: str = "name") -> dict[str, int]:
    return {item[key]: item["clicks"] for item in items}


def test_the_owner_sees_every_redirect_counted_with_referrers_and_devices(
    client: httpx.Client,
) -> None:
    owner = register(client)
    code = create(client, owner)
    follow(client, code, IPHONE, "https://www.google.com/search?q=a")
    follow(client, code, IPHONE, "https://news.example.org/item")
    follow(client, code, LINUX_FIREFOX, "https://www.google.com/")
    follow(client, code, LINUX_FIREFOX)
    follow(client, code, GOOGLEBOT)
    follow(client, code, "curl/8.5.0")

    stats = poll(client, f"/api/v1/links/{code}/stats", lambda s: total(s) >= 6, owner.bearer)
    assert stats["code"] == code
    assert stats["granularity"] == "day"
    # People and bots apart; all redirects came from one address: one visitor.
    assert stats["totals"] == {"clicks": 4, "bot_clicks": 2, "unique_visitors": 1}
    assert len(stats["series"]) == 7  # the last 7 days by default, today included
    assert stats["series"][-1]["clicks"] == 4
    assert stats["series"][-1]["bot_clicks"] == 2
    assert named(stats["referrers"], "domain") == {
        "google.com": 2,
        "news.example.org": 1,
        "direct": 1,
    }
    assert stats["referrers"][0]["domain"] == "google.com"
    devices = stats["devices"]
    assert named(devices["device"]) == {"mobile": 2, "desktop": 2, "bot": 0}
    assert named(devices["browser"])["Mobile Safari"] == 2
    assert named(devices["browser"])["Firefox"] == 2
    assert named(devices["os"]) == {"iOS": 2, "Linux": 2, "Other": 0}


def test_hourly_series_cover_the_range_asked_for(client: httpx.Client) -> None:
    code = create(client, None)
    follow(client, code, IPHONE)
    path = f"/api/v1/links/{code}/stats?granularity=hour&from=2020-01-01T00:00:00Z"
    wide = client.get(path)
    assert wide.status_code == 422
    assert wide.json()["code"] == "range_too_long"
    stats = poll(client, f"/api/v1/links/{code}/stats?granularity=hour", lambda s: total(s) >= 1)
    assert len(stats["series"]) == 7 * 24
    assert [p["clicks"] for p in stats["series"]][-1] == 1
    assert stats["to"] > stats["from"]


def test_only_the_owner_sees_an_owned_links_stats(client: httpx.Client) -> None:
    owner, stranger = register(client), register(client)
    code = create(client, owner)
    follow(client, code, IPHONE)
    poll(client, f"/api/v1/links/{code}/stats", lambda s: total(s) >= 1, owner.bearer)

    anonymous = client.get(f"/api/v1/links/{code}/stats")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "authentication_required"
    other = client.get(f"/api/v1/links/{code}/stats", headers=stranger.bearer)
    assert other.status_code == 403
    assert other.json()["code"] == "not_link_owner"


def test_a_link_created_anonymously_has_public_stats(client: httpx.Client) -> None:
    code = create(client, None)
    follow(client, code, IPHONE)
    follow(client, code, LINUX_FIREFOX)
    stats = poll(client, f"/api/v1/links/{code}/stats", lambda s: total(s) >= 2)
    assert stats["totals"]["clicks"] == 2
    someone = register(client)
    assert client.get(f"/api/v1/links/{code}/stats", headers=someone.bearer).status_code == 200


def test_a_code_nobody_has_heard_of_is_404(client: httpx.Client) -> None:
    for code in ("never-" + uuid.uuid4().hex[:10], "not%20a%20code"):
        response = client.get(f"/api/v1/links/{code}/stats")
        assert response.status_code == 404
        assert response.json()["code"] == "link_not_found"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "invalid_range"),
        ("from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "invalid_range"),
        ("from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "range_too_long"),
        ("granularity=hour&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", "range_too_long"),
        ("from=1900-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "invalid_range"),
        ("from=yesterday", "validation_failed"),
        # RFC 3339 date-times only, as the document says: not Unix seconds,
        # not a date alone, not a time without its offset.
        ("to=0.5", "validation_failed"),
        ("to=1767225600", "validation_failed"),
        ("from=2026-01-01", "validation_failed"),
        ("from=2026-01-01T00:00:00", "validation_failed"),
        ("granularity=minute", "validation_failed"),
    ],
)
def test_bad_ranges_and_granularities_are_422(client: httpx.Client, query: str, code: str) -> None:
    response = client.get(f"/api/v1/links/any-code/stats?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code


def test_top_lists_my_most_clicked_links(client: httpx.Client) -> None:
    owner, stranger = register(client), register(client)
    busy, quiet, idle = create(client, owner), create(client, owner), create(client, owner)
    for _ in range(3):
        follow(client, busy, IPHONE)
    follow(client, quiet, LINUX_FIREFOX)
    follow(client, quiet, GOOGLEBOT)
    follow(client, create(client, stranger), IPHONE)

    def counted(top: dict[str, Any]) -> bool:
        return sum(int(i["clicks"]) + int(i["bot_clicks"]) for i in top["items"]) >= 5

    top = poll(client, "/api/v1/stats/top", counted, owner.bearer)
    assert [(i["code"], i["clicks"], i["bot_clicks"]) for i in top["items"]] == [
        (busy, 3, 0),
        (quiet, 1, 1),
    ]
    assert idle not in {i["code"] for i in top["items"]}  # no clicks, nothing to rank
    limited = client.get("/api/v1/stats/top?limit=1", headers=owner.bearer).json()
    assert [i["code"] for i in limited["items"]] == [busy]
    assert client.get("/api/v1/stats/top").status_code == 401
