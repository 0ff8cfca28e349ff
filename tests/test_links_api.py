"""Creating and reading links through the gateway."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.accounts import register


def alias() -> str:
    return "t-" + uuid.uuid4().hex[:12]


def test_a_link_is_created_with_a_random_base62_code(
    client: httpx.Client, gateway_url: str
) -> None:
    response = client.post("/api/v1/links", json={"url": "https://example.com/a"})
    assert response.status_code == 201
    body = response.json()
    assert re.fullmatch(r"[0-9A-Za-z]{7}", body["code"])
    assert body["short_url"] == f"{gateway_url}/{body['code']}"
    assert body["url"] == "https://example.com/a"
    assert body["redirect_type"] == 302
    assert body["expires_at"] is None
    assert datetime.fromisoformat(body["created_at"]) <= datetime.now(UTC)


def test_a_created_link_can_be_read_back(client: httpx.Client) -> None:
    expires = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    created = client.post(
        "/api/v1/links",
        json={
            "url": "https://example.com/b",
            "expires_at": expires.isoformat(),
            "redirect_type": 308,
        },
    ).json()
    response = client.get(f"/api/v1/links/{created['code']}")
    assert response.status_code == 200
    assert response.json() == created
    assert datetime.fromisoformat(response.json()["expires_at"]) == expires


def test_an_unknown_link_is_404_with_a_problem_body(client: httpx.Client) -> None:
    response = client.get("/api/v1/links/nope-" + uuid.uuid4().hex[:8])
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "link_not_found"


def test_an_alias_becomes_the_code_and_cannot_be_taken_twice(client: httpx.Client) -> None:
    name = alias()
    first = client.post("/api/v1/links", json={"url": "https://example.com/1", "alias": name})
    assert first.status_code == 201
    assert first.json()["code"] == name
    second = client.post("/api/v1/links", json={"url": "https://example.com/2", "alias": name})
    assert second.status_code == 409
    assert second.json()["code"] == "alias_taken"
    assert client.get(f"/api/v1/links/{name}").json()["url"] == "https://example.com/1"


def test_when_requests_race_for_an_alias_exactly_one_wins(gateway_url: str) -> None:
    name = alias()

    def create(i: int) -> int:
        with httpx.Client(base_url=gateway_url, timeout=10) as http:
            body = {"url": f"https://example.com/{i}", "alias": name}
            return http.post("/api/v1/links", json=body).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(create, range(32)))
    assert sorted(set(statuses)) == [201, 409]
    assert statuses.count(201) == 1


def test_injection_looking_text_is_stored_as_a_browser_encodes_it(client: httpx.Client) -> None:
    url = "https://example.com/?q=1'%20OR%20'1'='1;--&x=<script>"
    created = client.post("/api/v1/links", json={"url": url})
    assert created.status_code == 201
    # The standard percent-encodes ' < > in an http(s) query; the rest stays.
    assert client.get(f"/api/v1/links/{created.json()['code']}").json()["url"] == (
        "https://example.com/?q=1%27%20OR%20%271%27=%271;--&x=%3Cscript%3E"
    )


BAD_URLS = {
    "javascript": ("javascript:alert(document.cookie)", "unsupported_scheme"),
    "data": ("data:text/html;base64,PHNjcmlwdD4=", "unsupported_scheme"),
    "file": ("file:///etc/passwd", "unsupported_scheme"),
    "no-host": ("https://", "missing_host"),
    "no-scheme": ("example.com/x", "invalid_url"),
    "too-long": ("https://example.com/" + "x" * 2040, "url_too_long"),
    "host-char": ("https://exa<mple.com/", "forbidden_host_code_point"),
    "ipv4": ("http://192.168.0.257/", "invalid_ipv4"),
    "port": ("https://example.com:65536/", "invalid_port"),
    "credentials": ("https://user:pw@example.com/", "credentials_in_url"),
    "self": ("{gateway}/loop", "own_host"),
}


@pytest.mark.parametrize(("url", "code"), BAD_URLS.values(), ids=BAD_URLS.keys())
def test_bad_urls_are_refused_with_their_reason_and_nothing_is_written(
    client: httpx.Client, gateway_url: str, url: str, code: str
) -> None:
    name = alias()
    url = url.replace("{gateway}", gateway_url)
    response = client.post("/api/v1/links", json={"url": url, "alias": name})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert client.get(f"/api/v1/links/{name}").status_code == 404


def test_a_url_is_stored_as_a_browser_reads_it(client: httpx.Client) -> None:
    # Whitespace, a CR LF and a control character: stripped or
    # percent-encoded by the standard, so the stored target is plain ASCII.
    url = " https://FAß.example/a b\r\nLocation: x\x07?#"
    created = client.post("/api/v1/links", json={"url": url})
    assert created.status_code == 201
    assert created.json()["url"] == "https://xn--fa-hia.example/a%20bLocation:%20x%07?#"


BAD_ALIASES = {
    "short": "ab",
    "long": "a" * 65,
    "charset": "with.dot",
    "slash": "a/b",
    "unicode": "ünïcode",
    "leading-dash": "-abc",
    "reserved-api": "api",
    "reserved-docs": "DOCS",
    "reserved-healthz": "healthz",
    "reserved-metrics": "metrics",
}


@pytest.mark.parametrize("bad", BAD_ALIASES.values(), ids=BAD_ALIASES.keys())
def test_bad_aliases_are_refused(client: httpx.Client, bad: str) -> None:
    response = client.post("/api/v1/links", json={"url": "https://example.com", "alias": bad})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_link"


BAD_BODIES = {
    "past-expiry": {"url": "https://example.com", "expires_at": "2000-01-01T00:00:00Z"},
    "naive-expiry": {"url": "https://example.com", "expires_at": "2999-01-01T00:00:00"},
    "bad-expiry": {"url": "https://example.com", "expires_at": "tomorrow"},
    "epoch-expiry": {"url": "https://example.com", "expires_at": 4102444800},
    "fractional-visits": {"url": "https://example.com", "max_visits": 2.5},
    "string-visits": {"url": "https://example.com", "max_visits": "2"},
    "redirect-303": {"url": "https://example.com", "redirect_type": 303},
    "redirect-str": {"url": "https://example.com", "redirect_type": "302x"},
    "url-number": {"url": 42},
    "url-missing": {"alias": "some-alias"},
    "extra-field": {"url": "https://example.com", "owner": "me"},
    "not-an-object": ["https://example.com"],
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_invalid_bodies_get_a_4xx_with_a_machine_readable_code(
    client: httpx.Client, body: object
) -> None:
    response = client.post("/api/v1/links", json=body)
    assert response.status_code == 422
    assert response.json()["code"] in {"invalid_link", "validation_failed"}


@pytest.mark.parametrize("raw", [b"{", b"not json", b'{"url": "https://e.com",}', b"\xff\xfe"])
def test_malformed_json_is_400(client: httpx.Client, raw: bytes) -> None:
    response = client.post(
        "/api/v1/links", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


def test_a_body_over_the_limit_is_413_before_it_is_parsed(client: httpx.Client) -> None:
    body = b'{"url": "https://example.com/", "alias": "' + b"a" * 70_000 + b'"}'
    response = client.post(
        "/api/v1/links", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_a_chunked_body_over_the_limit_is_413_too(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"url": "https://example.com/", "alias": "'
        for _ in range(100):
            yield b"a" * 1000
        yield b'"}'

    response = client.post(
        "/api/v1/links", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_a_patch_may_send_null_exactly_where_the_document_offers_it(client: httpx.Client) -> None:
    # null clears an expiry or a visit limit; a URL or a redirect type
    # cannot be cleared, so the document offers null for neither.
    schema = client.get("/openapi.json").json()["components"]["schemas"]["LinkUpdate"]
    nullable = {
        name
        for name, field in schema["properties"].items()
        if {"type": "null"} in field.get("anyOf", [])
    }
    assert nullable == {"expires_at", "max_visits"}
    assert schema["minProperties"] == 1
    owner = register(client)
    created = client.post(
        "/api/v1/links", json={"url": "https://example.com/n"}, headers=owner.bearer
    )
    path = f"/api/v1/links/{created.json()['code']}"
    for name in ("url", "redirect_type"):
        refused = client.patch(path, json={name: None}, headers=owner.bearer)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "validation_failed"
    cleared = client.patch(
        path, json={"expires_at": None, "max_visits": None}, headers=owner.bearer
    )
    assert cleared.status_code == 200, cleared.text


def test_a_visit_limit_written_as_a_whole_float_is_the_integer_json_schema_says_it_is(
    client: httpx.Client,
) -> None:
    response = client.post(
        "/api/v1/links", json={"url": "https://example.com/f", "max_visits": 3.0}
    )
    assert response.status_code == 201, response.text
    assert response.json()["max_visits"] == 3
