"""The metric selectors of a PromQL expression, for checking them against real scrapes.

Not a PromQL parser: a tokenizer that knows enough of the grammar to tell a
metric name from a function, an aggregation, a grouping clause, a keyword or a
label inside ``{...}`` (whose values may themselves hold braces, like
``route="/{code}"``). promtool checks that the expressions parse; this finds
what they read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Selector", "selectors"]

_TOKEN = re.compile(
    r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<number>\d+(?:\.\d*)?(?:e[+-]?\d+)?)
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<punct>=~|!~|!=|==|>=|<=|[{}()\[\],=<>+\-*/%^])
    | (?P<space>\s+)
    | (?P<other>[^\s])
    """,
    re.VERBOSE,
)
# Followed by a parenthesised list of label names, not of expressions.
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"}) | _GROUPING


@dataclass(frozen=True)
class Selector:
    """A metric read by an expression, with its equality label matchers."""

    name: str
    equals: dict[str, str] = field(default_factory=dict)


def _tokens(expr: str) -> list[tuple[str, str]]:
    found = []
    for match in _TOKEN.finditer(expr):
        kind = match.lastgroup or "other"
        if kind != "space":
            found.append((kind, match.group()))
    return found


def _skip_until(tokens: list[tuple[str, str]], start: int, closing: str) -> int:
    """The index just past the token ``closing`` that ends the group opened before ``start``."""
    i = start
    while tokens[i][1] != closing:
        i += 1
    return i + 1


def _matchers(tokens: list[tuple[str, str]], start: int) -> tuple[dict[str, str], int]:
    """Equality matchers of ``{...}`` opened just before ``start``; index past the ``}``."""
    equals: dict[str, str] = {}
    i = start
    while tokens[i][1] != "}":
        if tokens[i][0] in ("ident", "string") and tokens[i + 1][1] == "=":
            equals[tokens[i][1].strip("\"'")] = tokens[i + 2][1][1:-1]
            i += 3
        else:
            i += 1
    return equals, i + 1


def selectors(expr: str) -> list[Selector]:
    """Every metric selector in ``expr``, in order of appearance."""
    tokens = [*_tokens(expr), ("end", "")]
    found: list[Selector] = []
    i = 0
    while i < len(tokens) - 1:
        kind, text = tokens[i]
        following = tokens[i + 1][1]
        if text == "[":  # a range or subquery duration, e.g. [5m] or [$__rate_interval]
            i = _skip_until(tokens, i + 1, "]")
        elif text == "offset":  # offset 5m: a number and a unit, not a metric named "m"
            i += 3
        elif kind == "ident" and text in _GROUPING and following == "(":
            i = _skip_until(tokens, i + 2, ")")
        elif kind == "ident" and (following == "(" or following in ("by", "without")):
            i += 1  # a function, or an aggregation: sum(...), sum by (job) (...)
        elif kind == "ident" and text.lower() not in _KEYWORDS:
            equals: dict[str, str] = {}
            i += 1
            if following == "{":
                equals, i = _matchers(tokens, i + 1)
            found.append(Selector(text, equals))
        else:
            i += 1
    return found
