"""QR codes of short links, through the gateway: images, caching, bad parameters."""

from __future__ import annotations

import io
import struct

import httpx
import pytest
import segno


def shorten(client: httpx.Client) -> dict[str, str]:
    response = client.post("/api/v1/links", json={"url": "https://example.com/qr"})
    assert response.status_code == 201, response.text
    link: dict[str, str] = response.json()
    return link


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a valid PNG has first."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("size", [64, 256, 1000])
def test_a_png_encodes_the_short_url_at_most_size_pixels_wide(
    client: httpx.Client, size: int
) -> None:
    link = shorten(client)
    response = client.get(f"/api/v1/links/{link['code']}/qr", params={"size": size})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    width, height = png_size(response.content)
    assert width == height
    # Whole pixels per module: short of the size asked by less than one pixel a module.
    modules = segno.make(link["short_url"], error="m").symbol_size(border=4)[0]
    assert size - modules < width <= size
    expected = io.BytesIO()
    segno.make(link["short_url"], error="m").save(
        expected, kind="png", scale=width // modules, border=4
    )
    assert response.content == expected.getvalue()


def test_an_svg_is_served_too_with_the_url_as_its_title(client: httpx.Client) -> None:
    link = shorten(client)
    response = client.get(f"/api/v1/links/{link['code']}/qr", params={"format": "svg"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.text.startswith("<svg")
    assert f"<title>{link['short_url']}</title>" in response.text


def test_images_are_cacheable_and_revalidate_with_304(client: httpx.Client) -> None:
    code = shorten(client)["code"]
    first = client.get(f"/api/v1/links/{code}/qr")
    assert first.headers["cache-control"] == "public, max-age=86400"
    etag = first.headers["etag"]
    again = client.get(f"/api/v1/links/{code}/qr", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    weak = client.get(f"/api/v1/links/{code}/qr", headers={"if-none-match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    # Another size is another image.
    other = client.get(f"/api/v1/links/{code}/qr?size=512", headers={"if-none-match": etag})
    assert other.status_code == 200
    assert other.headers["etag"] != etag


def test_another_code_is_another_image(client: httpx.Client) -> None:
    a, b = shorten(client)["code"], shorten(client)["code"]
    assert (
        client.get(f"/api/v1/links/{a}/qr").content != client.get(f"/api/v1/links/{b}/qr").content
    )


@pytest.mark.parametrize(
    "query", ["format=gif", "size=63", "size=2049", "size=big", "format=png&size=-1"]
)
def test_bad_parameters_are_a_422_problem(client: httpx.Client, query: str) -> None:
    code = shorten(client)["code"]
    response = client.get(f"/api/v1/links/{code}/qr?{query}")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_failed"


def test_an_unknown_code_has_no_image(client: httpx.Client) -> None:
    response = client.get("/api/v1/links/nosuchcode42/qr")
    assert response.status_code == 404
    assert response.json()["code"] == "link_not_found"
