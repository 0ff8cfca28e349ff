"""docs/performance.md: generated sections between markers, hand-written text around them.

``make bench`` and ``make load`` each own one section and rewrite only that
one, so a reading of the profile written by hand, or the figures of the
other command, survive a new run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["write_section"]

_SKELETON: Final = """# Performance, measured

The sections between `<!-- ...:begin -->` and `<!-- ...:end -->` markers are
rewritten by `make bench` (loadtests/bench_redirect.py) and `make load`
(loadtests/load.py); edit only outside them.
"""


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the ``name`` section of ``path`` with ``body`` (appending it if new)."""
    text = path.read_text() if path.exists() else _SKELETON
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if begin not in text:
        text = f"{text.rstrip()}\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{body.strip()}\n{end}{tail}")
