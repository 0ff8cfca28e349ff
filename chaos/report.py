"""The suite's report: one Markdown table, with the machine it ran on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from chaos.judge import Outcome
from chaos.traffic import LIMITED_EVERY
from chaos.webhooks import BEGIN, END
from infra.provenance import commit, machine

__all__ = ["render", "write"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(outcomes: Sequence[Outcome], target: str, rate: float, seconds: float) -> str:
    passed = sum(o.passed for o in outcomes)
    lines = [
        "# Chaos report",
        "",
        f"{passed} of {len(outcomes)} experiments passed, against the {target}, "
        f"with {rate:.0f} redirects/s of traffic throughout; {seconds:.0f} s in all.",
        "",
        f"- when: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit()}",
        f"- machine: {machine()}",
        f"- Traffic: one request in {LIMITED_EVERY} goes to a visit-limited link, every "
        "visit of which must reach the link service (never published in the read model, "
        "never replayed); the rest to published links, which the gateway answers from its "
        "memory or the link service's read model. While the link service is away, a "
        "visit-limited link may be refused (503/504), never otherwise answered "
        "(chaos/judge.py).",
        "- RTO: from the fault's removal (for a kill, from the kill: the restart is part "
        "of the recovery) to steady state. RPO: clicks lost, clicks owed (redirects "
        "returned; for a visit-limited link, the visits the link service counted) minus "
        "clicks counted once the pipeline caught up.",
        "- Reproduce: `make dev` in one terminal, `make chaos` in another (chaos/README.md).",
        "",
        "| scenario | expectation | observed | result | RTO | RPO |",
        "|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        e = o.experiment
        observed = "; ".join(o.observed + o.failures)
        result = "pass" if o.passed else "**FAIL**"
        rto = f"{o.rto_seconds:.1f} s" if o.rto_seconds is not None else "-"
        rpo = f"{o.rpo_events} event{'' if o.rpo_events == 1 else 's'}"
        lines.append(
            f"| **{e.name}**: {_cell(e.summary)} | {_cell(e.expectation())} "
            f"| {_cell(observed)} | {result} | {rto} | {rpo} |"
        )
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    """Write the report, keeping the section `make chaos-webhooks` wrote into it."""
    before = path.read_text() if path.exists() else ""
    if BEGIN in before and END in before:
        kept = before.partition(BEGIN)[2].partition(END)[0]
        text += f"\n{BEGIN}{kept}{END}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
