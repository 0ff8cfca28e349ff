"""Short codes and aliases (unit tests: no servers needed)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.routes import GATEWAY_PATHS, ROUTES, match, match_route
from services.link.codes import ALPHABET, CODE_PATTERN, RESERVED, alias_problem, generate_code


def test_generated_codes_have_the_length_and_alphabet_asked_for() -> None:
    codes = [generate_code(7) for _ in range(2000)]
    assert all(len(c) == 7 and set(c) <= set(ALPHABET) for c in codes)
    assert len(set(codes)) == len(codes)


def test_generated_codes_use_the_whole_alphabet_evenly() -> None:
    counts = Counter("".join(generate_code(10) for _ in range(6200)))
    assert set(counts) == set(ALPHABET)
    # 1000 expected per symbol; a biased generator (e.g. modulo bias) strays far.
    assert all(800 < n < 1200 for n in counts.values())


@pytest.mark.parametrize("alias", ["abc", "launch-2026", "A_b-C", "x" * 64, "123"])
def test_good_aliases_are_accepted(alias: str) -> None:
    assert alias_problem(alias) is None


@pytest.mark.parametrize(
    "alias",
    ["ab", "x" * 65, "-abc", "_abc", "has space", "a/b", "a.b", "ünï", "a%20b", "", "abc\n"],
)
def test_bad_aliases_are_refused(alias: str) -> None:
    assert alias_problem(alias) is not None


@pytest.mark.parametrize("word", ["api", "docs", "healthz", "readyz", "metrics", "API", "Docs"])
def test_reserved_words_cannot_be_aliases(word: str) -> None:
    assert word.lower() in RESERVED
    assert "reserved" in (alias_problem(word) or "")


def test_the_gateway_routes_exactly_what_can_be_a_code() -> None:
    code_route = next(r for r in ROUTES if r.prefix == "/" and r.pattern is not None)
    assert code_route.pattern is not None
    assert code_route.pattern.pattern == "/" + CODE_PATTERN
    assert match("/" + generate_code(7)) == "link"
    assert match("/has.dot") is None
    assert match("/healthz") is None
    assert match("/api/v1/links") == "link"
    assert match("/api/v1/linksmore") is None
    assert match("/api/v1/links/abc/stats") == "analytics"
    assert match("/api/v1/links/abc") == "link"
    assert re.fullmatch(CODE_PATTERN, "a" * 65) is None


_SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.~%APIV", max_size=12)


@given(
    st.one_of(
        st.lists(_SEGMENT, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts)),
        st.sampled_from(["/", "//", "/api", "/api/v1/links", "/api/v1/links/", "/docs"]),
    )
)
def test_the_one_segment_shortcut_matches_as_the_whole_table_does(path: str) -> None:
    """gateway/routes.py looks at fewer routes for ``/x``; never with another answer."""
    expected = None
    if path not in GATEWAY_PATHS:
        expected = next((r for r in ROUTES if r.matches(path)), None)
    assert match_route(path) == expected
