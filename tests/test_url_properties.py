"""Property: whatever string is offered as a link, nothing answers 5xx, and an
accepted link redirects to exactly the href the standard gives it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from ada_url import parse_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.chassis.urls import URL_ERROR_CODES

SCHEMES = st.sampled_from(["http://", "https://", "HTTPS://", "http:", "https:\\\\", "ftp://", ""])
# Letters a host or a path can hold, and the ones that trip parsers: IDN,
# mapped and ignored code points (fullwidth f and %, the ideographic full
# stop), percent signs, whitespace and controls.
TRICKY = "aZ09.-_~%:@[]<>^|\\/?# \t\r\n\x00\x07\x7fßéÅ½\uff46\uff05\u3002\u00ad\u200d\u0661🙂\ufffd"
TEXT = st.text(alphabet=st.sampled_from(TRICKY), max_size=12)
LABEL = st.one_of(
    st.sampled_from(["example", "xn--fa-hia", "xn--", "faß", "bücher", "\uff25\uff38.com", "a..b"]),
    TEXT,
)
NUMBER = st.one_of(
    st.integers(0, 2**32 + 1).map(str),
    st.integers(0, 300).map(hex),
    st.integers(0, 300).map(lambda n: f"0{n:o}"),
)
HOST = st.one_of(
    st.lists(LABEL, min_size=1, max_size=3).map(".".join),
    st.lists(NUMBER, min_size=1, max_size=5).map(".".join),
    st.sampled_from(["[::1]", "[2001:db8::1]", "[::ffff:1.2.3.4]", "[1::1::1]", "[::1", "[zz]"]),
    st.binary(max_size=4).map(lambda b: "".join(f"%{c:02X}" for c in b) + ".com"),
)
PORT = st.one_of(st.just(""), st.integers(0, 70000).map(lambda p: f":{p}"), TEXT.map(":".__add__))
USER = st.one_of(st.just(""), st.sampled_from(["user@", "u:p@", ":@", "@"]))
URLS = st.builds(
    lambda *parts: "".join(parts), SCHEMES, USER, HOST, PORT, st.just("/"), TEXT, TEXT, TEXT
)


@pytest.fixture(scope="module")
def api(gateway_url: str) -> Iterator[httpx.Client]:
    # Module-scoped: hypothesis runs every example in one call of the test.
    with httpx.Client(base_url=gateway_url, timeout=10) as client:
        yield client


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(url=URLS)
def test_any_url_is_refused_with_a_code_or_redirected_to_as_its_href(
    api: httpx.Client, url: str
) -> None:
    created = api.post("/api/v1/links", json={"url": url})
    assert created.status_code in {201, 422}, created.text
    if created.status_code == 422:
        assert created.json()["code"] in {*URL_ERROR_CODES, "validation_failed"}
        return
    stored = created.json()["url"]
    assert parse_url(stored, attributes=("href",))["href"] == stored
    redirect = api.get(f"/{created.json()['code']}")
    assert redirect.status_code == 302
    # The header's bytes, before httpx makes anything of them.
    location = dict(redirect.headers.raw)[b"location"].decode("ascii")
    assert parse_url(location, attributes=("href",))["href"] == stored
