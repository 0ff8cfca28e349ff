"""A short chaos run in CI: the suite, against a whole local stack started as
`make dev` starts it (its own ports and state directory), must pass.

Three experiments, ~1 minute: a crash of the link service (published links
answered by the gateway from its memory and the read model throughout;
visit-limited links, whose every visit needs the link service, refused with
503 and opening its breaker; the supervisor's restart), a frozen broker
(buffered clicks, none lost) and a rolling restart of the gateway (no
accepted request lost). The whole suite (`make chaos`, ~6 minutes) runs by
hand; its latest report is docs/chaos-report.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from infra.devstack.managed import wait_ready
from infra.devstack.processes import start_python
from infra.devstack.stack import REPO_ROOT, Ports
from infra.devstack.state import StateDir

CI_EXPERIMENTS = "kill-link,freeze-broker,restart-gateway"


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, str]]:
    # Under /tmp: the stack's Postgres runs as the `postgres` user, who must reach its data.
    root = Path(tempfile.mkdtemp(prefix="shortener-chaos-", dir="/tmp"))
    root.chmod(0o755)
    ports = Ports.free()
    env = {
        **os.environ,
        "DEVSTACK_STATE_DIR": str(root / "state"),
        **{f"DEVSTACK_{f.name.upper()}_PORT": str(getattr(ports, f.name)) for f in fields(ports)},
    }
    runner = start_python(
        "devstack", ["-m", "infra.devstack", "up"], env, root / "up.log", None, cwd=REPO_ROOT
    )
    state = StateDir(root / "state")
    try:
        started = lambda: any(e.name == "gateway" for e in state.recorded())  # noqa: E731
        wait_ready(runner, started, 120, "start the stack")
        wait_ready(runner, lambda: "ready in" in (root / "up.log").read_text(), 60, "be ready")
        yield env
    finally:
        runner.stop(timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_a_short_chaos_run_passes(stack: dict[str, str], tmp_path: Path) -> None:
    report = tmp_path / "chaos.md"
    command = [sys.executable, "-m", "chaos", "--only", CI_EXPERIMENTS, "--report", str(report)]
    result = subprocess.run(
        command, check=False, env=stack, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = report.read_text()
    assert "3 of 3 experiments passed" in text
    for name in CI_EXPERIMENTS.split(","):
        assert f"**{name}**" in text
