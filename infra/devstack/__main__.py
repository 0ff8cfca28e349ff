"""``python -m infra.devstack up|down|status|restart``: the local stack of `make dev`.

``up`` stays in the foreground: it starts everything, prints where each piece runs,
then supervises. Ctrl-C, or ``down`` from another terminal (which sends it SIGTERM),
stops everything in reverse order and exits 0. A process that dies on its own is
started again; one that dies five times in a minute stops the rest and exits 1.
``restart <name>`` asks it to replace one process (the gateway rolls: the new one
listens beside the old before the old one drains). Problems the user can fix print
one ``devstack: ...`` message and exit 1, without a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from infra.devstack.managed import LOCALHOST, exit_reason, log_tail
from infra.devstack.processes import DevstackError, ManagedProcess, ensure_ports_free
from infra.devstack.procfs import age_seconds, stack_pss_bytes, stack_rss_bytes
from infra.devstack.stack import ENTRYPOINT, Ports, start_stack, stop_stack
from infra.devstack.state import RUNNER, Recorded, StateDir, state_root
from infra.devstack.supervisor import Supervisor, relaunchers


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # `down` sends SIGTERM; handling it exactly like Ctrl-C gives one shutdown path.
    raise KeyboardInterrupt


def _say(message: str) -> None:
    print(f"devstack: {message}", file=sys.stderr, flush=True)


def _shown(path: Path) -> str:
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _table(entries: Sequence[Recorded], state: StateDir) -> str:
    rows = [("name", "pid", "address", "log")]
    rows += [(e.name, str(e.pid), e.url, _shown(e.log)) for e in entries]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    pids = [e.pid for e in entries]
    rss, pss = stack_rss_bytes(pids), stack_pss_bytes(pids)
    lines.append(
        f"memory: {pss / 2**20:.0f} MiB proportional, {rss / 2**20:.0f} MiB resident"
        " (these processes and their children; resident counts shared pages once per process)"
    )
    lines.append(f"postgres data: {_shown(state.postgres_data)}")
    return "\n".join(line.rstrip() for line in lines)


def up(state: StateDir, ports: Ports) -> int:
    if running := state.forget_stale():
        listed = ", ".join(f"{e.name} pid {e.pid}" for e in running)
        raise DevstackError(f"already running ({listed}); stop it with `make down`")
    ensure_ports_free(ports.by_name())
    signal.signal(signal.SIGTERM, _interrupt)
    state.record_runner()
    procs: list[ManagedProcess] = []
    try:
        procs = start_stack(ports, state, monitoring=True)
        entries = [e for e in state.recorded() if e.name != RUNNER]
        # The port its replicas share, not one replica's own.
        entrypoint = f"http://{LOCALHOST}:{ports.gateway}"
        print(_table(entries, state))
        print(f"\n{ENTRYPOINT}: {entrypoint}\nAPI docs: {entrypoint}/docs")
        monitor = next((e.url for e in entries if e.name == "prometheus"), None)
        print(f"prometheus: {monitor or 'not installed (./infra/bootstrap.sh installs it)'}")
        print(f"ready in {age_seconds(os.getpid()):.1f} s; Ctrl-C stops everything", flush=True)
        # What dies is started again (the chaos suite relies on it); what
        # keeps dying stops the stack.
        supervisor = Supervisor(procs, relaunchers(ports, state), state, _say)
        dead = supervisor.watch()
        code = dead.stop()
        _say(f"{dead.name} (pid {dead.pid}) {exit_reason(code)} too often; stopping the rest"
             + log_tail(dead.log_path))  # fmt: skip
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)  # past the ^C the terminal echoed
        if not procs:  # start_stack has already stopped what it started
            _say("interrupted while starting; stopped what had started")
        return 0
    finally:
        # A second Ctrl-C must not cut the cleanup short and strand children.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stopped := stop_stack(procs, state):
            _say("stopped " + ", ".join(name for name, _ in stopped))
        state.forget(RUNNER)


def down(state: StateDir) -> int:
    running = state.forget_stale()
    if not running:
        _say("nothing running")
        return 0
    for entry in running:
        if entry.name == RUNNER:
            entry.stop(timeout=60)  # it stops its children itself, in order
    for entry in reversed(running):
        if entry.name != RUNNER and entry.running():  # left over from a runner that was killed
            entry.stop()
    state.forget_stale()
    _say("stopped " + ", ".join(f"{e.name} (pid {e.pid})" for e in reversed(running)))
    return 0


def status(state: StateDir) -> int:
    running = state.forget_stale()
    children = [e for e in running if e.name != RUNNER]
    if not children:
        _say("nothing running")
        return 0
    print(_table(children, state))
    if len(children) == len(running):
        _say("left over from an `up` that is gone; `make down` stops them")
    return 0


def restart(state: StateDir, name: str, timeout: float = 60) -> int:
    """Ask the running `up` to replace ``name`` (the gateway without a gap); wait for it."""
    running = {e.name: e for e in state.forget_stale()}
    if RUNNER not in running or name not in running:
        raise DevstackError(f"no running {name} to restart; start the stack with `make dev`")
    old = running[name].pid
    state.request_restart(name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = {e.name: e for e in state.recorded()}
        if name in now and now[name].pid != old and now[name].running():
            _say(f"{name} restarted: pid {old} -> {now[name].pid}")
            return 0
        time.sleep(0.2)
    raise DevstackError(f"{name} was not restarted within {timeout:.0f} s")


def clean(state: StateDir) -> int:
    """Stop the stack, then delete its state: the state directory and, where
    Postgres could not live inside it, its data directory under /var/tmp."""
    down(state)
    _say("deleted " + ", ".join(str(path) for path in state.delete()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.devstack", description="Run the whole system locally."
    )
    parser.add_argument("command", choices=("up", "down", "status", "restart", "clean"))
    parser.add_argument("name", nargs="?", help="restart: which process (e.g. gateway)")
    args = parser.parse_args(argv)
    state = StateDir(state_root())
    try:
        if args.command == "up":
            return up(state, Ports.from_env())
        if args.command == "restart":
            return restart(state, args.name or "gateway")
        if args.command == "clean":
            return clean(state)
        return down(state) if args.command == "down" else status(state)
    except DevstackError as error:
        _say(str(error))
        return 1


if __name__ == "__main__":
    sys.exit(main())
