"""Target URLs, parsed as browsers parse them (unit tests; docs/links-urls.md)."""

from __future__ import annotations

import pytest

from services.chassis.url_errors import InvalidUrl
from services.chassis.urls import MAX_URL_LENGTH, URL_ERROR_CODES, host_key, normalize_url

OWN = frozenset({host_key("http://sho.rt")})


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://example.com/a", "https://example.com/a"),
        ("HTTP://example.com", "http://example.com/"),
        ("https://example.com:8443/p?q=1#f", "https://example.com:8443/p?q=1#f"),
        ("https://example.com:443/", "https://example.com/"),
        ("https://bücher.de/straße", "https://xn--bcher-kva.de/stra%C3%9Fe"),
        # UTS 46 non-transitional: ß stays ß (IDNA 2003 made it "ss", another host).
        ("https://faß.ExAmPlE/", "https://xn--fa-hia.example/"),
        ("https://example.com/?q=a%20b", "https://example.com/?q=a%20b"),
        ("http://example.org/test?#", "http://example.org/test?#"),
        ("http://foo.09..", "http://foo.09../"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://0x7f.1/", "http://127.0.0.1/"),
        ('https://example.com/a\'--;"x"', "https://example.com/a'--;%22x%22"),
        ("https://example.com/é", "https://example.com/%C3%A9"),
        # Whitespace is stripped at the ends and tabs and newlines removed, as
        # a browser does: a Location header can never carry a CR or LF.
        ("  https://example.com/a\r\nSet-Cookie: x\t ", "https://example.com/aSet-Cookie:%20x"),
        ("https://example.com/\x07bell", "https://example.com/%07bell"),
        ("https:///path-as-host", "https://path-as-host/"),
        ("https://@example.com/", "https://example.com/"),
    ],
)
def test_a_url_is_stored_as_the_standard_writes_it(url: str, stored: str) -> None:
    assert normalize_url(url, own_hosts=OWN) == stored


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://a<b/", "forbidden_host_code_point"),
        ("http://ho%00st/", "forbidden_host_code_point"),
        ("http://\uff05\uff14\uff11.com", "forbidden_host_code_point"),  # fullwidth %41
        ("https://exa mple.com", "forbidden_host_code_point"),
        ("http://192.168.0.257", "invalid_ipv4"),
        ("http://4294967296", "invalid_ipv4"),
        ("http://1.2.3.08/", "invalid_ipv4"),
        ("http://foo.09", "invalid_ipv4"),
        ("http://a.b.c.xn--pokxncvks", "invalid_host"),
        ("https://xn--/", "invalid_host"),
        ("http://ex%ff.com/", "invalid_host"),
        ("http://[1::1::1]/", "invalid_ipv6"),
        ("http://[::1/", "invalid_ipv6"),
        ("https://example.com:99999/", "invalid_port"),
        ("https://example.com:8o/", "invalid_port"),
        ("https://", "missing_host"),
        ("http://user@/", "missing_host"),
        ("example.com", "invalid_url"),
        ("//example.com/x", "invalid_url"),
        ("", "invalid_url"),
        ("javascript:alert(1)", "unsupported_scheme"),
        ("data:text/html,<script>alert(1)</script>", "unsupported_scheme"),
        ("file:///etc/passwd", "unsupported_scheme"),
        ("ftp://example.com/x", "unsupported_scheme"),
        ("https://user:pass@example.com/", "credentials_in_url"),
        ("https://bank.com@evil.com/", "credentials_in_url"),
        ("https://example.com:0/", "blocked_port"),
        ("http://example.com:25/", "blocked_port"),
        ("http://sho.rt/abc", "own_host"),
        ("http://SHO.RT.:80/abc", "own_host"),
        ("https://example.com/" + "a" * MAX_URL_LENGTH, "url_too_long"),
        # Within the limit as typed, past it once the parser percent-encodes.
        ("https://example.com/" + "é" * 1000, "url_too_long"),
    ],
)
def test_a_refusal_names_its_reason(url: str, code: str) -> None:
    with pytest.raises(InvalidUrl) as refused:
        normalize_url(url, own_hosts=OWN)
    assert refused.value.code == code
    assert refused.value.status_code == 422
    assert code in URL_ERROR_CODES


def test_a_url_of_exactly_the_limit_is_accepted() -> None:
    url = "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/"))
    assert normalize_url(url) == url


def test_a_lone_surrogate_is_read_as_a_replacement_character() -> None:
    assert normalize_url("https://example.com/\ud800") == "https://example.com/%EF%BF%BD"


def test_private_and_loopback_addresses_are_targets_like_any_other() -> None:
    # The service never fetches a target: docs/links-urls.md says why they pass.
    for url in ("http://127.0.0.1:8080/", "http://10.0.0.1/", "http://[::1]/"):
        assert normalize_url(url, own_hosts=OWN) == url
