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
from infra.dr.traffic import Client, Link
from infra.dr.webhooks import subscribe, wait_owed

__all__ = ["DrillResult", "run_drill"]

# The services whose consumer groups are rewound: stopped before, started after.
CONSUMERS = ("analytics", "webhooks")


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
    creation_works: bool
    login_after: bool
    old_token_after: bool
    counts_match: bool
    webhook_clicks_expected: int  # clicks of the user's links (lost ones too), each owed once
    webhook_clicks_owed: int  # owed to the user's endpoint after the restore

    @property
    def passed(self) -> bool:
        return (
            self.old_links_resolve
            and self.creation_works
            and self.login_after
            and self.old_token_after
            and self.counts_match
            and self.clicks_lost_on_surviving == 0
            and self.webhook_clicks_owed == self.webhook_clicks_expected
        )


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
    try:
        processes = start_stack(ports, state)  # on failure it stops what it started
        try:
            return _Drill(processes, ports, state, root / "backup", wait).run(links, rewind=rewind)
        finally:
            stop_stack(processes, state)
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)


class _Drill:
    """The drill's steps on one running stack; ``marks`` are monotonic instants by name."""

    def __init__(
        self,
        processes: list[ManagedProcess],
        ports: Ports,
        state: StateDir,
        backup_dir: Path,
        wait: float,
    ) -> None:
        self.processes, self.ports, self.state = processes, ports, state
        self.target = Target.for_stack(ports, state)
        self.backup_dir, self.wait = backup_dir, wait
        self.client = Client(f"http://127.0.0.1:{ports.gateway}")
        self.marks: dict[str, float] = {}

    def run(self, n: int, *, rewind: bool) -> DrillResult:
        client = self.client
        client.register()
        endpoint = subscribe(client)
        old = client.create(n // 2, owned=True, tag="old")
        old += client.create(n - n // 2, owned=False, tag="old-anon")
        for i, link in enumerate(old):
            client.click([link], 1 + i % 5)
        self._all_counted(old, "before the backup")
        self._all_owed(endpoint, old, "before the backup")
        clicks_before = sum(link.clicks for link in old)

        manifest = backup(self.backup_dir, self.target)
        self.marks["backed_up"] = time.monotonic()
        new = client.create(max(1, n // 4), owned=True, tag="new")
        client.click(old, 1)
        client.click(new, 2)
        self._all_counted(old + new, "after the backup")
        self._all_owed(endpoint, old + new, "after the backup")
        clicks_after = sum(x.clicks for x in old + new) - clicks_before
        token_before = client.token

        self._disaster()
        resolve, created = self._recover(old, rewind=rewind)

        lost = client.lost(new)
        survivors = old + [link for link in new if link not in lost]
        shown = client.wait_counted(survivors, self.wait)
        self.marks["counted"] = time.monotonic()
        # Lost links too: their events are on the broker, replayed by the rewind.
        owed_expected = _owned_clicks(old + new)
        owed = wait_owed(self._webhooks_db, endpoint, owed_expected, self.wait)
        client.token = token_before
        with client.http() as http:
            old_token_after = http.get("/api/v1/links", headers=client.auth()).status_code == 200
        marks = self.marks
        return DrillResult(
            links_before=len(old),
            clicks_before=clicks_before,
            links_after=len(new),
            clicks_after=clicks_after,
            backup_seconds=float(manifest["seconds"]),
            backup_bytes=int(manifest["snapshot_bytes"]),
            at_risk_seconds=marks["disaster"] - marks["backed_up"],
            restore_seconds=marks["restored"] - marks["disaster"],
            postgres_start_seconds=marks["postgres_up"] - marks["restored"],
            rto_seconds=marks["serving"] - marks["disaster"],
            rewind_seconds=marks["rewound"] - marks["serving"],
            counted_seconds=marks["counted"] - marks["disaster"],
            links_lost=len(lost),
            clicks_lost_on_surviving=sum(max(0, x.clicks - shown[x.code]) for x in survivors),
            clicks_on_lost_links=sum(link.clicks for link in lost),
            old_links_resolve=resolve,
            creation_works=created,
            login_after=client.login(),
            old_token_after=old_token_after,
            counts_match=all(shown[x.code] == x.clicks for x in survivors),
            webhook_clicks_expected=owed_expected,
            webhook_clicks_owed=owed,
        )

    @property
    def _webhooks_db(self) -> str:
        return service_env(self.ports)["webhooks"]["WEBHOOKS_DATABASE_URL"]

    def _all_owed(self, endpoint: str, links: list[Link], when: str) -> None:
        expected = _owned_clicks(links)
        if wait_owed(self._webhooks_db, endpoint, expected, self.wait) != expected:
            raise RuntimeError(
                f"clicks {when} were not all owed to the webhook within {self.wait} s"
            )

    def _all_counted(self, links: list[Link], when: str) -> None:
        if self.client.wait_counted(links, self.wait) != {x.code: x.clicks for x in links}:
            raise RuntimeError(f"clicks {when} were not all counted within {self.wait} s")

    def _disaster(self) -> None:
        """The server dies without a clean shutdown, and its files are gone."""
        self.marks["disaster"] = time.monotonic()
        postgres = self._process("postgres")
        os.kill(postgres.pid, signal.SIGKILL)
        postgres.stop()
        shutil.rmtree(self.target.data_dir)

    def _recover(self, old: list[Link], *, rewind: bool) -> tuple[bool, bool]:
        """The plan's order: consumers stopped, the snapshot back, Postgres up;
        once redirects and creation work, the offsets rewound and the consumers
        started. (Old links all redirect?, a link can be created?)"""
        for consumer in CONSUMERS:
            self._process(consumer).stop()
        restore_databases(self.backup_dir, self.target)
        self.marks["restored"] = time.monotonic()
        log = self.state.log("postgres-restored")
        self._replace(start_postgres(self.target.data_dir, self.ports.postgres, log))
        self.marks["postgres_up"] = time.monotonic()
        resolve = self.client.wait_resolving(old, self.wait)
        created = self.client.can_create(self.wait)
        self.marks["serving"] = time.monotonic()
        if rewind:  # without it the clicks since the backup are never counted: --no-rewind
            rewind_consumers(self.backup_dir, self.target)
        self.marks["rewound"] = time.monotonic()
        for consumer in CONSUMERS:
            spec = next(s for s in SERVICES if s.name == consumer)
            env, log = service_env(self.ports)[consumer], self.state.log(f"{consumer}-restored")
            ready = f"{spec.url(self.ports)}/readyz"
            argv = ["-m", spec.module, *spec.serve]
            self._replace(start_python(spec.name, argv, env, log, ready))
        return resolve, created

    def _process(self, name: str) -> ManagedProcess:
        return next(p for p in self.processes if p.name == name)

    def _replace(self, fresh: ManagedProcess) -> None:
        index = next(i for i, p in enumerate(self.processes) if p.name == fresh.name)
        self.processes[index] = fresh


def _owned_clicks(links: list[Link]) -> int:
    """Clicks owed to the user's webhook: those of the links the user owns."""
    return sum(link.clicks for link in links if link.owned)
