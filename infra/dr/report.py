"""The drill's figures, as text for the terminal and for docs/disaster-recovery.md.

Only the part of the document between the two markers is rewritten; the
plan around it is prose kept by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from infra.dr.drill import DrillResult
from infra.provenance import commit, machine

__all__ = ["BEGIN", "END", "render", "write_into"]

BEGIN = "<!-- drill:begin (written by `make dr-drill`; do not edit by hand) -->"
END = "<!-- drill:end -->"


def render(r: DrillResult) -> str:
    rows = [
        ("verdict", "PASSED" if r.passed else "FAILED"),
        ("data before the backup", f"{r.links_before} links, {r.clicks_before} clicks"),
        ("data after the backup", f"{r.links_after} links, {r.clicks_after} clicks"),
        ("backup (offsets, pg_basebackup, pg_verifybackup)", f"{r.backup_seconds:.2f} s"),
        ("snapshot size", f"{r.backup_bytes / 2**20:.1f} MiB"),
        ("backup -> disaster (the window at risk)", f"{r.at_risk_seconds:.1f} s"),
        ("disaster -> snapshot back, link cache emptied", f"{r.restore_seconds:.2f} s"),
        ("Postgres start on the restored files (WAL replay)", f"{r.postgres_start_seconds:.2f} s"),
        ("**RTO**: disaster -> old links redirect, new created", f"**{r.rto_seconds:.1f} s**"),
        ("consumer groups rewound to the backup's offsets", f"{r.rewind_seconds:.1f} s"),
        ("disaster -> every surviving click counted again", f"{r.counted_seconds:.1f} s"),
        (
            "**RPO, links**: created after the backup, gone",
            f"**{r.links_lost} of {r.links_after}**",
        ),
        ("**RPO, clicks** on surviving links", f"**{r.clicks_lost_on_surviving} lost**"),
        ("clicks made on the lost links", str(r.clicks_on_lost_links)),
        ("every old link redirects to its URL; a new link can be created",
         _yes(r.old_links_resolve) + ", " + _yes(r.creation_works)),
        ("click counts match redirects served", _yes(r.counts_match)),
        ("clicks owed to the user's webhook, each once (of those on their links, lost ones too)",
         f"{r.webhook_clicks_owed} of {r.webhook_clicks_expected}"),
        ("login after restore; token from before still valid", _yes(r.login_after)
         + ", " + _yes(r.old_token_after)),
    ]  # fmt: skip
    table = "\n".join(["| measure | value |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])
    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    return (
        f"Machine: {machine()}; commit {commit()}; {when}. Everything (Postgres, Redis,\n"
        "the broker, five services and the drill's client) shares these cores.\n\n"
        f"{table}\n"
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def write_into(document: Path, section: str) -> None:
    """Replace what lies between the markers of ``document`` with ``section``."""
    text = document.read_text()
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"{document} lacks the drill markers")
    document.write_text(f"{head}{BEGIN}\n{section}{END}{tail}")
