"""Links belong to whoever created them; only the owner lists, changes or deletes."""

from __future__ import annotations

import httpx

from tests.accounts import Account, api_key, register
from tests.conftest import Infra, running_gateway, running_link_service


def create(client: httpx.Client, account: Account | None, url: str) -> str:
    headers = account.bearer if account else {}
    response = client.post("/api/v1/links", json={"url": url}, headers=headers)
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


def test_my_links_are_listed_newest_first_a_page_at_a_time(client: httpx.Client) -> None:
    owner, other = register(client), register(client)
    codes = [create(client, owner, f"https://example.com/{i}") for i in range(5)]
    create(client, other, "https://example.com/not-mine")
    create(client, None, "https://example.com/anonymous")
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/links", params=params, headers=owner.bearer).json()
        seen += [item["code"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert seen == codes[::-1]
    assert cursor is None


def test_a_bad_cursor_is_422(client: httpx.Client) -> None:
    owner = register(client)
    response = client.get("/api/v1/links", params={"cursor": "!!"}, headers=owner.bearer)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_cursor"


def test_a_change_is_seen_by_the_very_next_redirect(client: httpx.Client) -> None:
    owner = register(client)
    code = create(client, owner, "https://example.com/before")
    assert client.get(f"/{code}").headers["location"] == "https://example.com/before"  # cached
    patched = client.patch(
        f"/api/v1/links/{code}",
        json={"url": "https://example.com/after", "redirect_type": 307},
        headers=owner.bearer,
    )
    assert patched.status_code == 200
    assert patched.json()["url"] == "https://example.com/after"
    follow = client.get(f"/{code}")
    assert follow.status_code == 307
    assert follow.headers["location"] == "https://example.com/after"


def test_an_expiry_set_in_a_patch_applies_at_once(client: httpx.Client) -> None:
    owner = register(client)
    code = create(client, owner, "https://example.com/e")
    client.get(f"/{code}")
    bad = client.patch(
        f"/api/v1/links/{code}", json={"expires_at": "2001-01-01T00:00:00Z"}, headers=owner.bearer
    )
    assert bad.status_code == 422
    assert client.get(f"/{code}").status_code == 302


def test_a_deleted_link_is_404_on_the_next_redirect_and_its_code_is_not_reused(
    client: httpx.Client,
) -> None:
    owner = register(client)
    code = create(client, owner, "https://example.com/gone")
    assert client.get(f"/{code}").status_code == 302
    assert client.delete(f"/api/v1/links/{code}", headers=owner.bearer).status_code == 204
    assert client.get(f"/{code}").status_code == 404
    assert client.get(f"/api/v1/links/{code}").status_code == 404
    again = client.post(
        "/api/v1/links", json={"url": "https://evil.example", "alias": code}, headers=owner.bearer
    )
    assert again.status_code in (409, 422)


def test_an_api_key_acts_for_its_owner(client: httpx.Client) -> None:
    owner = register(client)
    key = {"x-api-key": api_key(client, owner)["key"]}
    response = client.post("/api/v1/links", json={"url": "https://example.com/k"}, headers=key)
    code = response.json()["code"]
    listed = client.get("/api/v1/links", headers=owner.bearer).json()["items"]
    assert [item["code"] for item in listed] == [code]
    assert client.delete(f"/api/v1/links/{code}", headers=key).status_code == 204


def test_anonymous_creation_can_be_switched_off(infra: Infra, user_url: str) -> None:
    with (
        running_link_service(infra, allow_anonymous_create="false") as link,
        running_gateway(infra, link, user_service_url=user_url) as gateway,
        httpx.Client(base_url=gateway) as http,
    ):
        anonymous = http.post("/api/v1/links", json={"url": "https://example.com"})
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "authentication_required"
        owner = register(http)
        owned = http.post(
            "/api/v1/links", json={"url": "https://example.com"}, headers=owner.bearer
        )
        assert owned.status_code == 201
