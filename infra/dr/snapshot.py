"""A physical snapshot of the whole Postgres cluster, and putting it back.

``pg_basebackup`` copies the data directory of a running server together
with the WAL written while it copied. Started from that copy, Postgres
replays the WAL up to the end of the backup and opens the cluster as it was
at that one instant: the ``link``, ``users`` and ``analytics`` databases
agree with each other to the transaction, which three ``pg_dump`` runs (one
snapshot per database, taken one after the other) would not promise.

The commands run as the account that runs Postgres (see
``infra.devstack.postgres``), so the files they write are owned the way the
server needs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from infra.devstack.managed import LOCALHOST, DevstackError
from infra.devstack.postgres import postgres_account, postgres_bindir, postgres_unreachable_parent
from infra.devstack.procfs import cmdline

__all__ = ["base_backup", "ensure_stopped", "restore_data_dir", "verify_backup"]


def _run(tool: str, *args: str, timeout: float = 600) -> str:
    """Run a Postgres client tool as the server's account; its output, or a DevstackError."""
    account = postgres_account()
    done = subprocess.run(  # noqa: S603 -- a fixed argv, no shell
        [str(postgres_bindir() / tool), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,  # the output goes into our error below
        cwd="/",  # a cwd the account may not enter makes the tools complain
        user=account.pw_uid if account else None,
        group=account.pw_gid if account else None,
        extra_groups=[] if account else None,
    )
    if done.returncode != 0:
        raise DevstackError(f"{tool} failed with code {done.returncode}:\n{done.stderr.strip()}")
    return done.stdout


def _give_to_postgres(path: Path) -> None:
    account = postgres_account()
    if account is None:
        return
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(Path(root) / name, account.pw_uid, account.pw_gid, follow_symlinks=False)
    os.chown(path, account.pw_uid, account.pw_gid)


def base_backup(port: int, target: Path) -> None:
    """Copy the cluster on ``port`` into ``target`` (created; must not exist yet).

    ``--checkpoint=fast`` starts at once instead of waiting for the next
    scheduled checkpoint (up to five minutes); ``--wal-method=stream`` ships
    the WAL of the copy's own duration alongside it, so the copy is
    self-contained and needs no WAL archive to start.
    """
    if (blocker := postgres_unreachable_parent(target)) is not None:
        raise DevstackError(f"user postgres cannot reach {target}: {blocker} is not searchable")
    if target.exists():
        raise DevstackError(f"{target} already exists; a backup never overwrites another")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.mkdir(mode=0o700)
    _give_to_postgres(target)
    _run(
        "pg_basebackup", "--host", LOCALHOST, "--port", str(port), "--username", "postgres",
        "--pgdata", str(target), "--wal-method=stream", "--checkpoint=fast", "--no-password",
    )  # fmt: skip


def verify_backup(target: Path) -> None:
    """Check every file against the manifest pg_basebackup wrote, and that the WAL parses."""
    _run("pg_verifybackup", str(target))


def ensure_stopped(data_dir: Path) -> None:
    """Refuse to touch a data directory a live server is using."""
    lock = data_dir / "postmaster.pid"
    try:
        pid = int(lock.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    # The PID may have gone to another process since; only a server of this directory counts.
    if str(data_dir.resolve()) in (cmdline(pid) or []):
        raise DevstackError(f"Postgres (PID {pid}) is running on {data_dir}: stop it first")


def restore_data_dir(backup: Path, data_dir: Path) -> None:
    """Make ``data_dir`` a copy of the snapshot in ``backup``, ready for Postgres to start.

    An existing, non-empty ``data_dir`` is refused rather than replaced: the
    operator moves it aside (it may be the only copy of something).
    """
    ensure_stopped(data_dir)
    if data_dir.exists() and any(data_dir.iterdir()):
        raise DevstackError(f"{data_dir} is not empty: move it aside before restoring into it")
    if data_dir.exists():
        data_dir.rmdir()
    shutil.copytree(backup, data_dir, symlinks=True)
    # The manifest describes the backup, not a live cluster; Postgres ignores it.
    (data_dir / "backup_manifest").unlink(missing_ok=True)
    _give_to_postgres(data_dir)
    data_dir.chmod(0o700)  # Postgres refuses a data directory others can read
