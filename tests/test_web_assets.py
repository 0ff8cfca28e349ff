"""The web page and its assets, served by the gateway the way a CDN would."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import httpx
import pytest

from gateway.web.assets import IMMUTABLE, accepts_gzip, load_bundle

PLAIN = {"accept-encoding": "identity"}


def asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)


def test_the_page_is_revalidated_on_every_load_and_answers_304_when_unchanged(
    client: httpx.Client,
) -> None:
    first = client.get("/", headers=PLAIN)
    assert first.status_code == 200
    assert first.headers["content-type"] == "text/html; charset=utf-8"
    assert first.headers["cache-control"] == "no-cache"
    assert first.headers["vary"] == "Accept-Encoding"
    assert "script-src 'self'" in first.headers["content-security-policy"]
    etag = first.headers["etag"]
    again = client.get("/", headers={**PLAIN, "if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert client.get("/", headers={**PLAIN, "if-none-match": '"old"'}).status_code == 200
    head = client.head("/", headers=PLAIN)
    assert head.status_code == 200
    assert head.headers["etag"] == etag
    assert head.content == b""


def test_every_asset_the_page_names_is_fingerprinted_immutable_and_typed(
    client: httpx.Client,
) -> None:
    urls = asset_urls(client.get("/").text)
    assert {Path(u).suffix for u in urls} == {".css", ".js"}
    for url in urls:
        response = client.get(url, headers=PLAIN)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == IMMUTABLE
        assert response.headers["x-content-type-options"] == "nosniff"
        kind = "text/css" if url.endswith(".css") else "text/javascript"
        assert response.headers["content-type"] == f"{kind}; charset=utf-8"
        # The name carries the content's hash: new content, new name.
        fingerprint = url.rsplit(".", 2)[1]
        assert hashlib.sha256(response.content).hexdigest()[:12] == fingerprint


def test_text_is_gzipped_for_clients_that_accept_it_and_plain_for_others(
    client: httpx.Client,
) -> None:
    url = next(u for u in asset_urls(client.get("/").text) if u.endswith(".js"))
    plain = client.get(url, headers=PLAIN)
    assert "content-encoding" not in plain.headers
    with client.stream("GET", url, headers={"accept-encoding": "br, gzip;q=0.8"}) as packed:
        raw = b"".join(packed.iter_raw())
        assert packed.headers["content-encoding"] == "gzip"
        assert packed.headers["vary"] == "Accept-Encoding"
        assert packed.headers["etag"] != plain.headers["etag"]
    assert gzip.decompress(raw) == plain.content
    assert len(raw) < len(plain.content) / 2
    # Holding either encoding is holding the current file.
    revalidated = client.get(url, headers={"if-none-match": plain.headers["etag"]})
    assert revalidated.status_code == 304


@pytest.mark.parametrize("path", ["/assets/app.js", "/assets/app.000000000000.js", "/assets/x"])
def test_an_unknown_or_outdated_asset_is_a_404_problem(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "asset_not_found"


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("", False),
        (None, False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding_is_read_with_its_qualities(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


def test_a_changed_file_gets_a_new_name_and_a_missing_one_fails_at_start(
    tmp_path: Path,
) -> None:
    (tmp_path / "index.html").write_text('<link href="{{ a.css }}">')
    (tmp_path / "a.css").write_text("body { color: red }")
    before = load_bundle(tmp_path)
    (tmp_path / "a.css").write_text("body { color: blue }")
    after = load_bundle(tmp_path)
    assert before.urls["a.css"] != after.urls["a.css"]
    assert after.urls["a.css"].encode() in after.page.body
    assert before.page.digest != after.page.digest
    (tmp_path / "index.html").write_text('<script src="{{ gone.js }}"></script>')
    with pytest.raises(LookupError, match=r"gone\.js"):
        load_bundle(tmp_path)
