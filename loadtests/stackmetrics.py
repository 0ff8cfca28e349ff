"""What the stack's own /metrics say about a benchmark row: read before and after it."""

from __future__ import annotations

import re
from collections.abc import Iterable

import httpx

__all__ = ["cache_lookups", "dropped_clicks"]

_LOOKUPS = re.compile(r'^link_cache_lookups_total\{result="(\w+)"\} (\S+)$', re.MULTILINE)
_DROPPED = re.compile(r'^events_dropped_total\{[^}]*topic="clicks"[^}]*\} (\S+)$', re.MULTILINE)


def _metrics(base_url: str) -> str:
    return httpx.get(f"{base_url}/metrics", trust_env=False).text


def cache_lookups(link_url: str) -> dict[str, float]:
    """The link service's resolve-cache lookups so far, by result."""
    return {result: float(value) for result, value in _LOOKUPS.findall(_metrics(link_url))}


def dropped_clicks(publishers: Iterable[str]) -> float:
    """Click events the services at ``publishers`` have dropped so far (a full
    buffer, or shutdown): a row that drops clicks did less than it claims."""
    return sum(float(v) for url in publishers for v in _DROPPED.findall(_metrics(url)))
