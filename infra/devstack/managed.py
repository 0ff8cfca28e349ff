"""The primitives every launcher shares: the error type, ports, and ``ManagedProcess``.

Every child starts in its own session, so a Ctrl-C in the terminal reaches only the
runner, which then stops the children in order. Every stop goes by PID (each child
leads a process group whose id is its PID), never by process name.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.devstack.procfs import signal_group

__all__ = [
    "LOCALHOST",
    "DevstackError",
    "ManagedProcess",
    "accepts_tcp",
    "ensure_ports_free",
    "exit_reason",
    "free_port",
    "log_tail",
    "spawn",
    "wait_ready",
]

LOCALHOST = "127.0.0.1"


class DevstackError(Exception):
    """A problem the user can fix; the message is written to be shown as is.

    Raised for a port already taken, a binary missing, or a process that died or
    hung while starting (then with the tail of its log). The CLI prints it after
    ``devstack:`` and exits 1, without a traceback.
    """


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick; nothing reserves it)."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def ensure_ports_free(ports: Mapping[str, int]) -> None:
    """Fail before anything starts if a port we need is taken, naming what needed it."""
    for name, port in ports.items():
        with socket.socket() as sock:
            # Servers set SO_REUSEADDR; so must we, or a port our last run left in
            # TIME_WAIT would count as taken although a server could bind it.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOCALHOST, port))
            except OSError:
                raise DevstackError(f"port {port} ({name}) is already in use") from None


def accepts_tcp(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LOCALHOST, port), timeout=1):
        return True
    return False


@dataclass
class ManagedProcess:
    """A child we started; it leads its own process group, whose id is its PID."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    # Postgres takes SIGINT: its SIGTERM is a "smart" shutdown that waits for every
    # client to disconnect, which a leaked test connection would make last forever.
    stop_signal: signal.Signals = signal.SIGTERM

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def argv(self) -> list[str]:
        args = self.popen.args
        if isinstance(args, Sequence) and not isinstance(args, str | bytes):
            return [os.fsdecode(arg) for arg in args]
        return [os.fsdecode(args)]

    def alive(self) -> bool:
        return self.popen.returncode is None and not self._exited()

    def pause(self) -> None:
        """Freeze the whole group, like a hung host: connections stay open, nothing answers."""
        signal_group(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        signal_group(self.pid, signal.SIGCONT)

    def stop(self, timeout: float = 10.0) -> int:
        """Send ``stop_signal``, SIGKILL the whole group after ``timeout``; return the exit code."""
        if self.popen.returncode is not None:
            return self.popen.returncode
        if not self._exited():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, self.stop_signal)
            signal_group(self.pid, signal.SIGCONT)  # a paused process would hold the signal
            deadline = time.monotonic() + timeout
            while not self._exited() and time.monotonic() < deadline:
                time.sleep(0.02)
        # Sent before the leader is reaped, while its PID (the group id) cannot be reused:
        # whatever it left running in its group goes with it.
        signal_group(self.pid, signal.SIGKILL)
        return self.popen.wait()

    def _exited(self) -> bool:
        # WNOWAIT looks without reaping, so the PID stays ours until stop() is done with it.
        return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def spawn(
    name: str,
    argv: list[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    account: pwd.struct_passwd | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> ManagedProcess:
    """Start ``argv`` in a new session, stdout and stderr to ``log_path`` (truncated)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(  # noqa: S603 -- a list built by our launchers, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
        )
    return ManagedProcess(name, popen, log_path, stop_signal)


def exit_reason(code: int) -> str:
    """ "exited with code 1", or "was killed by SIGKILL" for Popen's negative codes."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"\n  last lines of {path}:\n" + "\n".join(f"    {line}" for line in tail)


def wait_ready(proc: ManagedProcess, probe: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``probe`` until it holds; if ``proc`` dies, hangs or we are interrupted, stop it."""
    deadline = time.monotonic() + timeout
    try:
        while not probe():
            if not proc.alive():
                code = proc.stop()
                raise DevstackError(
                    f"{proc.name} {exit_reason(code)} before it could {what}"
                    + log_tail(proc.log_path)
                )
            if time.monotonic() > deadline:
                raise DevstackError(
                    f"{proc.name} did not {what} within {timeout:.0f} s" + log_tail(proc.log_path)
                )
            time.sleep(0.1)
    except BaseException:
        # Also on Ctrl-C: the caller never got a handle on this process, so only we can stop it.
        proc.stop()
        raise
