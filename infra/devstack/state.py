"""The state directory (``.devstack/``): data, logs, and one pid file per running process.

Layout::

    .devstack/
        postgres/         Postgres data, kept between runs (see StateDir.postgres_data)
        redis/            Redis working directory (it saves nothing)
        logs/<name>.log   stdout and stderr of each process, truncated at each start
        pids/<name>.pid   line 1: the PID; line 2: JSON (argv, stop signal, URL, start time)

``down`` and ``status`` run in another terminal than ``up``: the pid files are how
they find the processes, and the recorded argv how they check that a PID still
belongs to the same command before signalling it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from infra.devstack import procfs
from infra.devstack.managed import ManagedProcess
from infra.devstack.postgres import postgres_unreachable_parent

__all__ = ["RUNNER", "Recorded", "StateDir", "state_root"]

RUNNER = "devstack"
"""The pid file of the ``up`` process itself, which `down` asks to stop everything."""


def state_root() -> Path:
    """``.devstack/`` in the checkout, unless ``DEVSTACK_STATE_DIR`` names another
    (a second stack beside `make dev`, as the chaos suite's test runs one)."""
    default = Path(__file__).resolve().parents[2] / ".devstack"
    return Path(os.environ.get("DEVSTACK_STATE_DIR") or default)


@dataclass(frozen=True)
class Recorded:
    """One pid file, parsed."""

    name: str
    pid: int
    argv: list[str]
    stop_signal: signal.Signals
    url: str
    log: Path
    started: float
    leads_group: bool

    def running(self) -> bool:
        """Alive and still running the recorded command (so not a PID reused since)."""
        return procfs.running(self.pid) and procfs.cmdline(self.pid) == self.argv

    def stop(self, timeout: float = 10.0) -> None:
        procfs.terminate(self.pid, self.stop_signal, timeout, group=self.leads_group)


@dataclass(frozen=True)
class StateDir:
    root: Path

    @property
    def redis_data(self) -> Path:
        return self.root / "redis"

    @property
    def postgres_data(self) -> Path:
        """``<root>/postgres``, or a directory under /var/tmp when Postgres could not reach it.

        As root, Postgres runs as the ``postgres`` account, which needs the search bit
        on every directory above its data; a checkout under /root (mode 0700) lacks it.
        Rather than loosen permissions on someone's home, we fall back to
        /var/tmp/devstack-<hash of root>/postgres: per checkout, kept across runs and
        reboots like the preferred place, and shown by ``up`` and ``status``.
        """
        preferred = self.root / "postgres"
        if postgres_unreachable_parent(preferred) is None:
            return preferred
        checkout = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:12]
        return Path("/var/tmp") / f"devstack-{checkout}" / "postgres"  # noqa: S108 -- see above

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def delete(self) -> list[Path]:
        """Delete the state, Postgres's data included wherever it lives; what was deleted."""
        deleted = [self.root]
        if not self.postgres_data.is_relative_to(self.root):
            deleted.append(self.postgres_data.parent)
        for path in deleted:
            shutil.rmtree(path, ignore_errors=True)
        return deleted

    def _pid_file(self, name: str) -> Path:
        return self.root / "pids" / f"{name}.pid"

    def record(self, proc: ManagedProcess, url: str = "") -> None:
        """Write the pid file of a process we started (it leads its own group)."""
        self._write(
            Recorded(
                name=proc.name,
                pid=proc.pid,
                argv=proc.argv,
                stop_signal=proc.stop_signal,
                url=url,
                log=proc.log_path,
                started=time.time(),
                leads_group=True,
            )
        )

    def record_runner(self) -> None:
        """Write the pid file of this very process, the foreground ``up``."""
        pid = os.getpid()
        self._write(
            Recorded(
                name=RUNNER,
                pid=pid,
                argv=procfs.cmdline(pid) or [],
                stop_signal=signal.SIGTERM,
                url="",
                log=Path(),
                started=time.time(),
                # Under make, our group is make's: a SIGKILL to it would take make along.
                leads_group=False,
            )
        )

    def _write(self, entry: Recorded) -> None:
        details = {
            "argv": entry.argv,
            "stop_signal": entry.stop_signal.name,
            "url": entry.url,
            "log": str(entry.log),
            "started": entry.started,
            "leads_group": entry.leads_group,
        }
        path = self._pid_file(entry.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{entry.pid}\n{json.dumps(details)}\n")

    def forget(self, name: str) -> None:
        self._pid_file(name).unlink(missing_ok=True)

    def _hold_file(self, name: str) -> Path:
        return self.root / "holds" / name

    def hold(self, name: str, seconds: float) -> None:
        """Ask the runner not to restart ``name`` for ``seconds`` (or until released):
        how the chaos suite keeps a killed piece down for the length of a fault."""
        path = self._hold_file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(time.time() + seconds))

    def release(self, name: str) -> None:
        self._hold_file(name).unlink(missing_ok=True)

    def request_restart(self, name: str) -> None:
        """Ask the runner to replace ``name`` with a fresh process (``take_restart``)."""
        path = self.root / "restart" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def take_restart(self, name: str) -> bool:
        """Whether a restart of ``name`` was asked for; the request is consumed."""
        try:
            (self.root / "restart" / name).unlink()
        except FileNotFoundError:
            return False
        return True

    def held(self, name: str) -> bool:
        try:
            until = float(self._hold_file(name).read_text())
        except (OSError, ValueError):
            return False
        return time.time() < until

    def recorded(self) -> list[Recorded]:
        """Every readable pid file, oldest first (the order things were started in)."""
        entries = []
        for path in (self.root / "pids").glob("*.pid"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                pid_line, details_line = path.read_text().splitlines()[:2]
                details = json.loads(details_line)
                entries.append(
                    Recorded(
                        name=path.stem,
                        pid=int(pid_line),
                        argv=list(details["argv"]),
                        stop_signal=signal.Signals[details["stop_signal"]],
                        url=details["url"],
                        log=Path(details["log"]),
                        started=float(details["started"]),
                        leads_group=bool(details["leads_group"]),
                    )
                )
        return sorted(entries, key=lambda entry: entry.started)

    def forget_stale(self) -> list[Recorded]:
        """Remove pid files whose process is gone (or unreadable); return those still running."""
        running = [entry for entry in self.recorded() if entry.running()]
        alive = {entry.name for entry in running}
        for path in (self.root / "pids").glob("*.pid"):
            if path.stem not in alive:
                path.unlink(missing_ok=True)
        return running
