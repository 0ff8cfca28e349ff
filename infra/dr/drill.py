"""The disaster-recovery drill: lose the databases for real, restore, measure.

On a stack of its own (free ports, a temporary directory; the launchers of
``make dev``), through the gateway as a client would:

1. a user and links (owned and anonymous), clicked, until the stats count
   every click;
2. ``backup``;
3. more traffic: new links and more clicks on the old ones, counted too;
   all of it is newer than the backup, the data at risk;
4. the disaster: Postgres is killed (SIGKILL) and its data directory deleted;
5. the restore, in the plan's order: the analytics service stopped, the
   snapshot put back and the link cache emptied, Postgres started; once
   redirects and creation work again, the consumer groups rewound and the
   analytics service started. The link, user and gateway processes are not
   restarted: they reconnect by themselves;
6. checks: every link from before the backup redirects to its URL; a link
   can be created; the user logs in, and a token issued before the disaster
   still works; every surviving link's click count equals the redirects it
   served, including those after the backup; the links created after the
   backup are gone, and counted as the loss.

RTO is measured from the disaster to the moment every old link redirects
and a new one can be created; RPO as what was lost (links, clicks) and the
time between the backup and the disaster.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from infra.devstack.processes import ManagedProcess, start_postgres, start_python
from infra.devstack.stack import SERVICES, Ports, service_env, start_stack, stop_stack
from infra.devstack.state import StateDir
from infra.dr.commands import Target, backup, restore_databases, rewind_consumers
from infra.dr.traffic import Client

__all__ = ["DrillResult", "run_drill"]


@dataclass
class DrillResult:
    links_before: int
    clicks_before: int
    links_after: int
    clicks_after: int
    backup_seconds: float
    backup_bytes: int
    at_risk_seconds: float  # backup -> disaster
    restore_seconds: float  # disaster -> snapshot files back, cache emptied
    postgres_start_seconds: float
    rto_seconds: float  # disaster -> old links redirect and new links are created
    rewind_seconds: float  # consumer groups back at the backup's offsets
    counted_seconds: float  # disaster -> every surviving click counted
    links_lost: int
    clicks_lost_on_surviving: int  # must be 0
    clicks_on_lost_links: int
    old_links_resolve: bool
    login_after: bool
    old_token_after: bool
    counts_match: bool

    @property
    def passed(self) -> bool:
        return (
            self.old_links_resolve
            and self.login_after
            and self.old_token_after
            and self.counts_match
            and self.clicks_lost_on_surviving == 0
        )


def _replace(processes: list[ManagedProcess], fresh: ManagedProcess) -> None:
    index = next(i for i, p in enumerate(processes) if p.name == fresh.name)
    processes[index] = fresh


def _process(processes: list[ManagedProcess], name: str) -> ManagedProcess:
    return next(p for p in processes if p.name == name)


def run_drill(
    workdir: Path | None = None, *, links: int = 20, wait: float = 90, rewind: bool = True
) -> DrillResult:
    """Run the whole drill on a stack of its own; it is stopped again whatever happens."""
    # The drill measures recovery, not the rate limiter.
    for name in ("REDIRECT", "CREATE", "CREATE_ANONYMOUS", "AUTH", "API"):
        os.environ[f"GATEWAY_RATELIMIT_{name}"] = "100000000/minute"
    root = workdir or Path(tempfile.mkdtemp(prefix="dr-drill-", dir="/tmp"))
    root.chmod(0o755)  # the postgres account writes the backup under it
    ports, state = Ports.free(), StateDir(root / "state")
    target = Target.for_stack(ports, state)
    processes = start_stack(ports, state)
    try:
        return _drill(
            processes=processes, ports=ports, state=state, target=target,
            backup_dir=root / "backup", n=links, wait=wait, rewind=rewind,
        )  # fmt: skip
    finally:
        stop_stack(processes, state)
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)


def _drill(
    *,
    processes: list[ManagedProcess],
    ports: Ports,
    state: StateDir,
    target: Target,
    backup_dir: Path,
    n: int,
    wait: float,
    rewind: bool,
) -> DrillResult:
    client = Client(f"http://127.0.0.1:{ports.gateway}")
    client.register()
    old = client.create(n // 2, owned=True, tag="old") + client.create(
        n - n // 2, owned=False, tag="old-anon"
    )
    for i, link in enumerate(old):
        client.click([link], 1 + i % 5)
    if client.wait_counted(old, wait) != {link.code: link.clicks for link in old}:
        raise RuntimeError("clicks before the backup were not all counted")
    clicks_before = sum(link.clicks for link in old)

    manifest = backup(backup_dir, target)
    backed_up = time.monotonic()

    new = client.create(max(1, n // 4), owned=True, tag="new")
    client.click(old, 1)
    client.click(new, 2)
    token_before = client.token
    if client.wait_counted(old + new, wait) != {x.code: x.clicks for x in old + new}:
        raise RuntimeError("clicks after the backup were not all counted")
    clicks_after = sum(x.clicks for x in old + new) - clicks_before

    # The disaster: the server dies without a clean shutdown and its files are gone.
    disaster = time.monotonic()
    postgres = _process(processes, "postgres")
    os.kill(postgres.pid, signal.SIGKILL)
    postgres.stop()
    shutil.rmtree(target.data_dir)

    # The plan: consumers stopped, the snapshot back, Postgres up (redirects
    # and creation first), then the offsets rewound and the consumers started.
    _process(processes, "analytics").stop()
    restore_databases(backup_dir, target)
    restored = time.monotonic()
    _replace(
        processes, start_postgres(target.data_dir, ports.postgres, state.log("postgres-restored"))
    )
    postgres_up = time.monotonic()
    resolve = client.wait_resolving(old, wait)
    created = client.can_create(wait)
    serving = time.monotonic()
    if rewind:  # without it, the clicks since the backup are never counted: see --no-rewind
        rewind_consumers(backup_dir, target)
    rewound = time.monotonic()
    spec = next(s for s in SERVICES if s.name == "analytics")
    _replace(
        processes,
        start_python(
            "analytics",
            ["-m", spec.module, *spec.serve],
            service_env(ports)["analytics"],
            state.log("analytics-restored"),
            f"{spec.url(ports)}/readyz",
        ),
    )
    lost = client.lost(new)
    survivors = old + [link for link in new if link not in lost]
    shown = client.wait_counted(survivors, wait)
    counted = time.monotonic()
    client.token = token_before
    with client.http() as http:
        old_token_after = http.get("/api/v1/links", headers=client.auth()).status_code == 200
    login_after = client.login()
    return DrillResult(
        links_before=len(old),
        clicks_before=clicks_before,
        links_after=len(new),
        clicks_after=clicks_after,
        backup_seconds=float(manifest["seconds"]),
        backup_bytes=int(manifest["snapshot_bytes"]),
        at_risk_seconds=disaster - backed_up,
        restore_seconds=restored - disaster,
        postgres_start_seconds=postgres_up - restored,
        rto_seconds=serving - disaster,
        rewind_seconds=rewound - serving,
        counted_seconds=counted - disaster,
        links_lost=len(lost),
        clicks_lost_on_surviving=sum(max(0, x.clicks - shown[x.code]) for x in survivors),
        clicks_on_lost_links=sum(link.clicks for link in lost),
        old_links_resolve=resolve and created,
        login_after=login_after,
        old_token_after=old_token_after,
        counts_match=all(shown[x.code] == x.clicks for x in survivors),
    )
