"""Where a measurement came from: the commit and the machine, for every report
the benchmarks, the chaos suite and the disaster-recovery drill write."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

__all__ = ["commit", "machine"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    return subprocess.run(  # noqa: S603 - fixed arguments
        ["git", *args],  # noqa: S607 - git from PATH, as make has it
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


def commit() -> str:
    """The short commit as Markdown, saying so when the tree had changes on top."""
    dirty = " with uncommitted changes" if _git("status", "--porcelain") else ""
    return f"`{_git('rev-parse', '--short', 'HEAD') or 'unknown'}`{dirty}"


def machine() -> str:
    """Cores, CPU model, memory and Python (which build: a distribution's and
    pyenv's default build differ in CPU, docs/adr/0021): enough to compare two reports."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        cpuinfo = []
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
        platform.machine(),
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, "
        f"{platform.system()} {platform.release()}, "
        f"Python {platform.python_version()} ({Path(sys.executable).resolve()})"
    )
