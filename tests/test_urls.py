"""Validation and normalisation of target URLs (unit tests)."""

from __future__ import annotations

import pytest

from services.link.urls import InvalidUrl, host_key, normalize_url

OWN = frozenset({host_key("http://sho.rt")})


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://example.com/a", "https://example.com/a"),
        ("HTTP://example.com", "http://example.com"),
        ("https://example.com:8443/p?q=1#f", "https://example.com:8443/p?q=1#f"),
        ("https://bücher.de/straße", "https://xn--bcher-kva.de/stra%C3%9Fe"),
        ("https://example.com/?q=a%20b", "https://example.com/?q=a%20b"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ('https://example.com/a\'--;"x"', 'https://example.com/a\'--;"x"'),
        ("https://example.com/é", "https://example.com/%C3%A9"),
    ],
)
def test_web_urls_are_stored_in_ascii(url: str, stored: str) -> None:
    assert normalize_url(url, own_hosts=OWN) == stored


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "ftp://example.com/x",
        "https://",
        "https:///path-only",
        "example.com",
        "//example.com/x",
        "https://example.com/" + "a" * 2048,
        "https://exa mple.com",
        "https://example.com/\r\nSet-Cookie: a=b",
        "https://example.com/\x00",
        "https://example.com/\t",
        "https://user:pass@example.com/",
        "https://bank.com@evil.com/",
        "https://example.com:99999/",
        "https://example.com:0/",
        "http://sho.rt/abc",
        "http://SHO.RT:80/abc",
        "",
    ],
)
def test_unsafe_or_broken_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidUrl):
        normalize_url(url, own_hosts=OWN)


def test_a_url_of_exactly_the_limit_is_accepted() -> None:
    url = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
    assert normalize_url(url) == url
