"""The creation shortcut answers exactly as FastAPI's route does.

``serve_create`` (services/link/creation.py) creates a link from a JSON body
without FastAPI's routing, and hands every other body to FastAPI. Two link
apps run in this process (tests/link_apps.py): one as shipped, one with the
shortcut taken out. Each body, written here or drawn by hypothesis, must
get the same status, headers and body from both; a link created by each
differs only in its random code and its time of creation.
"""

from __future__ import annotations

import json
import secrets

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.chassis.red import route_label
from tests.link_apps import App

PATH = "/api/v1/links"
CT = "application/json"
_SAME_LENGTH = {"content-length"}  # created_at's fraction may have fewer digits

CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
        "text/plain",
        "application/x-www-form-urlencoded",
        None,
    ]
)
URLS = st.one_of(
    st.sampled_from(
        ["https://example.com/p?q=1", "http://bücher.example/ä", "javascript:alert(1)", "", " "]
    ),
    st.text(max_size=20),
)
# Aliases that cannot be taken, so that neither app's creation makes the other's a 409.
BAD_ALIASES = st.sampled_from(["", "a b", "x" * 300, "healthz", "ok/no", None])
FIELDS = st.fixed_dictionaries(
    {"url": URLS},
    optional={
        "alias": BAD_ALIASES,
        "redirect_type": st.one_of(st.sampled_from([301, 302, 307, 308]), st.integers(-5, 999)),
        "max_visits": st.one_of(st.none(), st.integers(-2, 2**40), st.text(max_size=3)),
        "expires_at": st.sampled_from(
            ["2999-01-01T00:00:00Z", "2000-01-01T00:00:00Z", "tomorrow", "2999-01-01", None]
        ),
        "extra": st.integers(),
    },
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
BODIES = st.one_of(
    FIELDS.map(lambda f: json.dumps(f).encode()),
    FIELDS.map(lambda f: json.dumps(f, ensure_ascii=False).encode("utf-16")),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40),
    st.just(b""),
    st.just(b'{"url": "https://example.com/", "url": "https://example.org/"}'),
    st.just(b'{"url": "https://example.com/", "max_visits": NaN}'),
)


def _answer(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """What must match, to the byte: a creation's code and time stand in as placeholders."""
    headers = sorted(response.headers.multi_items())
    if response.status_code != 201:
        return response.status_code, headers, response.content
    created = response.json()
    body = response.content
    for field, placeholder in (("code", b"CODE"), ("created_at", b"CREATED")):
        body = body.replace(created[field].encode(), placeholder)
    return 201, [(k, v) for k, v in headers if k not in _SAME_LENGTH], body


async def assert_same_answer(
    pair: tuple[App, App], body: bytes, content_type: str | None
) -> httpx.Response:
    shipped, reference = pair
    answers = [await app.post(PATH, body, content_type) for app in pair]
    assert _answer(answers[0]) == _answer(answers[1]), (body, content_type)
    # The RED metrics' route: the route's own, but for a body refused before routing (413).
    assert route_label(shipped.scope) == route_label(reference.scope)
    return answers[0]


def took_the_shortcut(app: App) -> bool:
    return app.scope.get("route_template") == PATH and "route" not in app.scope


async def test_a_creation_is_answered_alike_and_skips_fastapi(apps: tuple[App, App]) -> None:
    body = {
        "url": "https://example.com/created",
        "redirect_type": 307,
        "max_visits": 5,
        "expires_at": "2999-01-01T00:00:00Z",
    }
    response = await assert_same_answer(apps, json.dumps(body).encode(), "application/json")
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    created = response.json()
    assert created["url"] == "https://example.com/created"
    assert created["short_url"].endswith("/" + created["code"])
    assert took_the_shortcut(apps[0])
    assert not took_the_shortcut(apps[1])
    # The link exists: it redirects.
    assert (await apps[0].get("/" + created["code"])).status_code == 307


async def test_an_alias_and_its_second_use_are_answered_alike(apps: tuple[App, App]) -> None:
    suffix = secrets.token_hex(4)
    aliases = (f"shortcut-a-{suffix}", f"shortcut-b-{suffix}")
    for app, alias in zip(apps, aliases, strict=True):
        body = json.dumps({"url": "https://example.com/", "alias": alias}).encode()
        first = await app.post(PATH, body, "application/json")
        assert first.status_code == 201
        assert first.json()["code"] == alias
    taken = [
        await app.post(PATH, json.dumps({"url": "https://x.example/", "alias": alias}).encode(), CT)
        for app, alias in zip(apps, aliases, strict=True)
    ]
    assert [r.status_code for r in taken] == [409, 409]
    assert taken[0].json()["code"] == "alias_taken"
    assert taken[0].content.replace(aliases[0].encode(), aliases[1].encode()) == taken[1].content
    assert took_the_shortcut(apps[0])


async def test_a_refusal_by_the_service_is_the_same_problem(apps: tuple[App, App]) -> None:
    body = json.dumps({"url": "javascript:alert(1)"}).encode()
    response = await assert_same_answer(apps, body, "application/json")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert took_the_shortcut(apps[0])  # parsed and validated here; refused by the service


async def test_a_body_fastapi_refuses_is_refused_by_fastapi(apps: tuple[App, App]) -> None:
    response = await assert_same_answer(apps, b'{"url": 5, "colour": "red"}', "application/json")
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert not took_the_shortcut(apps[0])


async def test_a_body_over_the_limit_is_the_same_413(apps: tuple[App, App]) -> None:
    body = json.dumps({"url": "https://example.com/" + "a" * 2_000_000}).encode()
    response = await assert_same_answer(apps, body, "application/json")
    assert response.status_code == 413


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(body=BODIES, content_type=CONTENT_TYPES)
async def test_any_body_is_answered_alike(
    apps: tuple[App, App], body: bytes, content_type: str | None
) -> None:
    response = await assert_same_answer(apps, body, content_type)
    assert response.status_code in {201, 400, 401, 409, 413, 422}
    if response.status_code == 201 and content_type is not None:
        assert took_the_shortcut(apps[0]) == content_type.lower().startswith("application/json")
