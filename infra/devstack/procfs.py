"""What /proc says about processes, including ones this Python process did not start.

``down`` and ``status`` run in another terminal than the ``up`` that started the
stack, so they hold no ``Popen``: they find processes by the PIDs recorded in
``.devstack/pids/`` and check, through /proc, that each PID still runs the command
that was recorded before signalling it (a PID can be reused after a reboot).
Linux only, like the rest of the local stack.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "age_seconds",
    "cmdline",
    "descendants",
    "pss_bytes",
    "rss_bytes",
    "running",
    "signal_group",
    "stack_pss_bytes",
    "stack_rss_bytes",
    "terminate",
]

_PROC = Path("/proc")


def cmdline(pid: int) -> list[str] | None:
    """The argv of ``pid``, or None when it is gone (or a zombie, whose cmdline is empty)."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None
    # Every argument ends with NUL; strip only the last one so a trailing "" argument survives.
    return [os.fsdecode(arg) for arg in raw.removesuffix(b"\0").split(b"\0")]


def _stat(pid: int) -> list[str] | None:
    """Fields 3 onwards of /proc/PID/stat (state, ppid, ...), so field N is at index N - 3."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces and ")".
    return text[text.rindex(")") + 2 :].split()


def running(pid: int) -> bool:
    """True while ``pid`` exists and has not exited (a zombie has exited, only not yet reaped)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def age_seconds(pid: int) -> float:
    """How long ago ``pid`` was started (so, for ourselves, including interpreter start-up)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    uptime = float((_PROC / "uptime").read_text().split()[0])
    return uptime - int(fields[22 - 3]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime


def descendants(pids: Iterable[int]) -> set[int]:
    """``pids`` plus every process below them (Postgres backends, worker processes...)."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, ()))
    return seen


def rss_bytes(pid: int) -> int:
    """VmRSS of one process; 0 when it is gone."""
    try:
        lines = (_PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # reported in kB
    return 0  # zombies have no VmRSS line


def stack_rss_bytes(pids: Iterable[int]) -> int:
    """Resident memory of ``pids`` and all their descendants, summed.

    An upper bound: pages shared between processes (Postgres shared buffers, which
    every backend maps) are counted once per process that touched them.
    """
    return sum(rss_bytes(pid) for pid in descendants(pids))


def pss_bytes(pid: int) -> int:
    """Proportional set size of one process: its private pages, and each page it
    shares with n processes as 1/n of a page; 0 when it is gone."""
    try:
        lines = (_PROC / str(pid) / "smaps_rollup").read_text().splitlines()
    except OSError:  # gone, or a kernel thread / zombie without a memory map
        return 0
    for line in lines:
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024  # reported in kB
    return 0


def stack_pss_bytes(pids: Iterable[int]) -> int:
    """The memory ``pids`` and all their descendants take from the machine:
    summed PSS counts every page once, however many of them map it (Postgres's
    shared buffers, one process's code pages mapped by another)."""
    return sum(pss_bytes(pid) for pid in descendants(pids))


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a whole process group; a group that is already gone is not an error."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def terminate(pid: int, sig: signal.Signals, timeout: float, *, group: bool) -> bool:
    """Stop a process we hold no ``Popen`` for: ``sig``, then SIGKILL after ``timeout``.

    With ``group`` the SIGKILL goes to the process group the process leads (every
    devstack child leads one), so nothing it started outlives it. Returns True when
    it stopped before the deadline.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    # A paused process (chaos test, Ctrl-Z) would hold sig pending forever.
    if group:
        signal_group(pid, signal.SIGCONT)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + timeout
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    polite = not running(pid)
    if group:
        signal_group(pid, signal.SIGKILL)
    elif not polite:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return polite


def listens_on(pid: int, port: int) -> bool:
    """Whether ``pid`` itself holds a listening TCP socket on ``port``.

    With SO_REUSEPORT several processes listen on one port, so asking the
    port ("is something answering?") cannot tell a new process from the old.
    """
    wanted: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                wanted.add(f"socket:[{inode}]")
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) in wanted:
                return True
        except OSError:
            continue
    return False
