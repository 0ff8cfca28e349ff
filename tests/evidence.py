"""What a CI log shows, not only what it checks: excerpts printed after the summary.

A green run says the checks passed; a reader of the log (a reviewer, a new
engineer) also wants to *see* what was checked: a real scrape, the trace the
tracing test followed, promtool's verdict. A test hands its excerpt to the
``evidence`` fixture; after the run, each is printed under its title in the
order the tests ran. Only excerpts of tests that passed are printed: one from
a failing test would look like proof of something that did not hold.

Registered by ``pytest_plugins`` in tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

__all__ = ["Evidence", "evidence"]

Evidence = Callable[[str, str], None]
"""``evidence(title, text)``: print ``text`` under ``title`` if the test passes."""

# One pytest run per process; excerpts waiting for their test's outcome, by
# test id, and those of tests that passed.
_pending: dict[str, list[tuple[str, str]]] = {}
_passed: list[tuple[str, str]] = []


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Evidence:
    pending = _pending.setdefault(request.node.nodeid, [])

    def show(title: str, text: str) -> None:
        pending.append((title, text.rstrip("\n")))

    return show


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        excerpts = _pending.pop(report.nodeid, [])
        if report.passed:
            _passed.extend(excerpts)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for title, text in _passed:
        terminalreporter.write_sep("=", title)
        terminalreporter.write_line(text)
