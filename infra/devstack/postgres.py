"""A private Postgres server: initdb on first use, started as a foreground child.

Postgres refuses to run as root. Under root we therefore run ``initdb`` and
``postgres`` as the ``postgres`` account, which owns the data directory; when not
root, as ourselves. That account needs the search bit on every directory above
the data directory: when one lacks it, ``start_postgres`` says which one rather
than loosening permissions itself (the stack picks a reachable directory first,
see ``StateDir.postgres_data``).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import asyncpg

from infra.devstack.managed import LOCALHOST, DevstackError, ManagedProcess, spawn, wait_ready
from infra.devstack.procfs import cmdline

__all__ = [
    "ensure_database",
    "postgres_account",
    "postgres_bindir",
    "postgres_unreachable_parent",
    "start_postgres",
]


def postgres_bindir() -> Path:
    """Where the server binaries are (initdb, pg_ctl, pg_basebackup): PATH, else Debian's."""
    if on_path := shutil.which("initdb"):
        return Path(on_path).resolve().parent
    # Debian keeps server binaries off PATH, in one directory per major version.
    found = sorted(
        Path("/usr/lib/postgresql").glob("[0-9]*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    if not found:
        raise DevstackError(
            "Postgres server binaries not found (Debian: apt-get install postgresql)"
        )
    return found[-1].parent


def postgres_account() -> pwd.struct_passwd | None:
    """The account to run Postgres as: ``postgres`` under root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise DevstackError("running as root needs a 'postgres' user to run Postgres as") from None


def postgres_unreachable_parent(data_dir: Path) -> Path | None:
    """The first existing directory above ``data_dir`` the Postgres account cannot enter."""
    account = postgres_account()
    if account is None:
        return None
    for parent in reversed(data_dir.resolve().parents):
        if not parent.exists():
            return None  # created later by us, with the umask's (searchable) mode
        st = parent.stat()
        searchable = (
            st.st_mode & stat.S_IXOTH
            or (st.st_uid == account.pw_uid and st.st_mode & stat.S_IXUSR)
            or (st.st_gid == account.pw_gid and st.st_mode & stat.S_IXGRP)
        )
        if not searchable:
            return parent
    return None


def _initdb(bindir: Path, data_dir: Path, account: pwd.struct_passwd | None) -> None:
    argv = [
        str(bindir / "initdb"), "-D", str(data_dir), "--auth=trust", "-U", "postgres",
        "-E", "UTF8", "--no-sync",
        # The host's LANG may name a locale that is not installed; C always is.
        "--no-locale",
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603 -- a fixed argv, no shell
        argv,
        capture_output=True,
        text=True,
        cwd=data_dir,
        timeout=120,
        check=False,  # the output goes into our error below
        user=account.pw_uid if account else None,
        group=account.pw_gid if account else None,
        extra_groups=[] if account else None,
    )
    if done.returncode != 0:
        raise DevstackError(
            f"initdb failed with code {done.returncode}:\n{done.stdout}{done.stderr}"
        )


def _remove_stale_lock(data_dir: Path) -> None:
    # A SIGKILLed server leaves postmaster.pid behind; if its PID has since gone to another
    # process of the same account, Postgres refuses to start ("lock file already exists").
    lock = data_dir / "postmaster.pid"
    try:
        pid = int(lock.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if str(data_dir) not in (cmdline(pid) or []):
        lock.unlink(missing_ok=True)


def start_postgres(data_dir: Path, port: int, log_path: Path) -> ManagedProcess:
    """Serve ``data_dir`` on 127.0.0.1:``port`` (initdb first if it is empty) until it takes logins.

    Reusing a data directory skips initdb, so a second start takes about a second.
    """
    bindir, account = postgres_bindir(), postgres_account()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if (blocker := postgres_unreachable_parent(data_dir)) is not None:
        raise DevstackError(
            f"user postgres cannot reach {data_dir}: {blocker} is not searchable by others "
            f"(chmod o+x {blocker}, or put the data under /tmp)"
        )
    if account is not None:
        os.chown(data_dir, account.pw_uid, account.pw_gid)
    data_dir.chmod(0o700)  # Postgres refuses a data directory others can read
    if not (data_dir / "PG_VERSION").exists():
        if any(data_dir.iterdir()):
            raise DevstackError(f"{data_dir} is neither empty nor a Postgres data directory")
        _initdb(bindir, data_dir, account)
    _remove_stale_lock(data_dir)
    argv = [
        str(bindir / "postgres"), "-D", str(data_dir), "-p", str(port),
        "-c", f"listen_addresses={LOCALHOST}", "-c", "unix_socket_directories=",
        # No fsync: only a crash of the whole machine could lose data, which a local
        # stack can afford and which costs seconds per test run. But a commit is on
        # disk (the OS's cache) before it is acknowledged: the chaos suite kills
        # Postgres, and a consumer that committed its offsets must find its batch.
        "-c", "fsync=off", "-c", "synchronous_commit=on", "-c", "full_page_writes=off",
        # Every service and test process keeps a pool; 100 runs out under the load tests.
        "-c", "max_connections=300",
    ]  # fmt: skip
    proc = spawn(
        "postgres", argv, log_path, cwd=data_dir, account=account, stop_signal=signal.SIGINT
    )
    wait_ready(proc, lambda: asyncio.run(_accepts_logins(port)), 60, "accept connections")
    return proc


async def _accepts_logins(port: int) -> bool:
    try:
        conn = await asyncpg.connect(
            host=LOCALHOST, port=port, user="postgres", database="postgres", timeout=2
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False  # not listening yet, or "the database system is starting up"
    await conn.close()
    return True


def ensure_database(port: int, name: str, user: str, password: str) -> None:
    """Create (or update) login role ``user`` and database ``name`` owned by it; idempotent.

    Owning the database lets the role create tables in its ``public`` schema, which
    Postgres 15 no longer grants to everyone.
    """
    asyncio.run(_ensure_database(port, name, user, password))


_ROLE_SQL = {
    verb: f"SELECT format('{verb} ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)"
    for verb in ("CREATE", "ALTER")
}


async def _ensure_database(port: int, name: str, user: str, password: str) -> None:
    conn = await asyncpg.connect(host=LOCALHOST, port=port, user="postgres", database="postgres")
    try:
        # DDL takes no bind parameters, so format() quotes names (%I) and literals (%L).
        # ALTER when the role exists keeps its password in step with the caller's.
        role_exists = "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)"
        template = "ALTER" if await conn.fetchval(role_exists, user) else "CREATE"
        role_sql = await conn.fetchval(_ROLE_SQL[template], user, password)
        await conn.execute(role_sql)
        db_exists = "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)"
        if not await conn.fetchval(db_exists, name):
            db_sql = await conn.fetchval(
                "SELECT format('CREATE DATABASE %I OWNER %I', $1::text, $2::text)", name, user
            )
            await conn.execute(db_sql)
    finally:
        await conn.close()
