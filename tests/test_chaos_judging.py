"""The chaos suite's judgement, on made-up traffic: the two kinds of links,
what each may answer during a fault, and the click accounting.

The experiments themselves run against a whole stack (tests/test_chaos.py,
``make chaos``); these check the rules they are judged by, in milliseconds.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from chaos.experiments import Experiment, by_name
from chaos.judge import Outcome, judge_clicks, judge_fault_window, judge_run
from chaos.report import render, write
from chaos.traffic import LIMITED, LIMITED_EVERY, PUBLISHED, Kind, Links, Sample


def sample(kind: Kind, status: int, cache: str = "", ms: float = 10, code: str = "c") -> Sample:
    return Sample(0.0, ms / 1000, status, code, kind, cache)


def judged(name: str, during: list[Sample], opened_after: float | None = 1.0) -> Outcome:
    (experiment,) = by_name([name])
    outcome = Outcome(experiment)
    judge_fault_window(experiment, during, outcome, opened_after)
    return outcome


def published(n: int, cache: str = "shared") -> list[Sample]:
    return [sample(PUBLISHED, 302, cache) for _ in range(n)]


def test_one_request_in_four_goes_to_a_visit_limited_link_each_in_turn() -> None:
    links = Links(published=[f"p{i}" for i in range(10)], limited=["l0", "l1"])
    picks = [links.pick(n) for n in range(40)]
    limited = [code for code, kind in picks if kind == LIMITED]
    assert len(limited) == 40 // LIMITED_EVERY
    assert Counter(limited) == {"l0": 5, "l1": 5}
    sent = [code for code, kind in picks if kind == PUBLISHED]
    assert Counter(sent) == {f"p{i}": 3 for i in range(10)}
    assert sent[:11] == [*links.published, "p0"]  # in turn, none skipped
    only_published = Links(published=["p0", "p1"])
    assert [only_published.pick(n) for n in range(4)] == [("p0", PUBLISHED), ("p1", PUBLISHED)] * 2


def test_a_link_fault_may_refuse_visit_limited_links_with_503_or_504() -> None:
    during = [
        *published(6),
        sample(PUBLISHED, 302, "stale"),
        sample(PUBLISHED, 302, "hit"),
        sample(LIMITED, 302),
        sample(LIMITED, 503),
        sample(LIMITED, 504, ms=400),
    ]
    outcome = judged("kill-link", during, opened_after=0.61)
    assert outcome.passed, outcome.failures
    assert outcome.observed == [
        "published links: 100.0% of 8 redirects ok, p99 10 ms",
        "visit-limited links: 33.3% of 3 redirects ok, p99 400 ms, 2 refused (503: 1, 504: 1)",
        "1 answered from the gateway's memory",
        "6 answered from the read model",
        "1 answered from the stale cache",
        "breaker open after 0.61 s",
    ]


@pytest.mark.parametrize("status", [0, 500, 502, 404])
def test_a_visit_limited_link_is_never_answered_otherwise(status: int) -> None:
    outcome = judged("freeze-link", [*published(4), sample(LIMITED, 503), sample(LIMITED, status)])
    assert outcome.failures == [
        f"visit-limited links answered {{{status}: 1}}: only 3xx, 503 or 504 may be"
    ]


def test_refusals_must_be_quick_and_published_links_keep_their_bounds() -> None:
    slow = [sample(LIMITED, 504, ms=3000)] * 2
    outcome = judged("kill-link", [*published(98), *[sample(PUBLISHED, 503)] * 2, *slow])
    assert outcome.failures == [
        "published links: redirect success 98.0% (statuses {302: 98, 503: 2})",
        "visit-limited links: p99 3000 ms",
    ]


def test_the_link_breaker_must_still_open() -> None:
    outcome = judged("latency-link", [*published(4), sample(LIMITED, 504)], opened_after=None)
    assert outcome.failures == ["link breaker did not open"]


def test_where_their_counting_stays_up_visit_limited_links_meet_the_success_bound() -> None:
    during = [*published(100), *[sample(LIMITED, 302)] * 30, sample(LIMITED, 503)]
    outcome = judged("kill-redis", during, opened_after=None)
    assert outcome.failures == [
        "visit-limited links: redirect success 96.8% (statuses {302: 30, 503: 1})"
    ]
    assert judged("kill-redis", during[:-1], opened_after=None).passed
    # Postgres down: they cannot be counted, so refused they may be.
    assert judged("kill-postgres", during, opened_after=None).passed


def test_a_visit_limited_link_answered_by_the_gateway_itself_fails_the_run() -> None:
    outcome = Outcome(by_name(["kill-link"])[0])
    judge_run([*published(3), sample(LIMITED, 302), sample(LIMITED, 302, "stale")], outcome)
    assert outcome.failures == [
        "visit-limited links answered by the gateway itself {'stale': 1}: "
        "visits not counted against their limit"
    ]


def clicks(name: str, limited: dict[str, int], visits: dict[str, int], counted: int) -> Outcome:
    outcome = Outcome(by_name([name])[0])
    judge_clicks(outcome, {"p0": 10, "p1": 5}, limited, visits, counted)
    return outcome


def test_clicks_owed_are_published_redirects_plus_the_visits_the_link_service_counted() -> None:
    exact = clicks("freeze-link", {"l0": 4, "l1": 3}, {"l0": 4, "l1": 3}, 22)
    assert exact.passed, exact.failures
    assert exact.observed == [
        "clicks 22/22 counted",
        "7 visits of visit-limited links counted by the link service, for 7 redirects",
    ]
    # Two visits counted, their answers too late for the gateway: owed, and said.
    late = clicks("latency-link", {"l0": 4, "l1": 1}, {"l0": 5, "l1": 2}, 22)
    assert late.passed, late.failures
    assert late.observed[1].endswith("(2 not redirected: answered after the gateway gave up)")


def test_click_accounting_failures() -> None:
    # A refused visit the link service did not count is owed no click: one more is extra.
    extra = clicks("kill-user", {"l0": 2}, {"l0": 2}, 18)
    assert extra.failures == ["1 clicks counted twice"]
    lost = clicks("kill-link", {"l0": 2}, {"l0": 2}, 13)
    assert (lost.rpo_events, lost.failures) == (4, ["4 clicks lost"])
    assert clicks("kill-link", {"l0": 2}, {"l0": 2}, 14).passed
    bypassed = clicks("restart-link", {"l0": 3}, {"l0": 2}, 17)
    assert bypassed.failures == ["1 visit-limited redirects not counted by the link service"]


def test_the_expectation_says_which_rule_each_kind_of_link_is_held_to() -> None:
    link, broker = by_name(["freeze-link", "freeze-broker"])
    assert link.expectation().startswith(
        "published links: redirects >= 99%, p99 <= 2600 ms; "
        "visit-limited links: 3xx, 503 or 504 only, p99 <= 2600 ms; link breaker opens <= 7 s"
    )
    assert broker.expectation().startswith("both kinds of links: redirects >= 100%, p99 <= 500 ms")
    assert not Experiment("x", "broker", "kill", "", 1.0, 500).limited_refusable


def test_the_report_is_rewritten_keeping_the_webhooks_section(tmp_path: Path) -> None:
    path = tmp_path / "chaos-report.md"
    section = "<!-- webhooks: begin -->\n## Webhooks\n\npass\n<!-- webhooks: end -->\n"
    path.write_text("# Chaos report\n\nold table\n\n" + section)
    failed = judged("kill-link", [sample(LIMITED, 502)], opened_after=None)
    write(path, render([failed, Outcome(by_name(["kill-user"])[0])], "local stack", 40, 90))
    text = path.read_text()
    assert "old table" not in text
    assert "1 of 2 experiments passed" in text
    assert "link breaker did not open | **FAIL** |" in text
    assert text.endswith("\n\n" + section)
