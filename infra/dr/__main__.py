"""``python -m infra.dr backup|restore|drill``: the disaster-recovery commands.

    python -m infra.dr backup .devstack/backups/1     # the running `make dev` stack
    python -m infra.dr restore .devstack/backups/1    # Postgres and analytics stopped first
    python -m infra.dr drill                          # make dr-drill

``backup`` and ``restore`` act on the `make dev` stack (its ports from
``DEVSTACK_<NAME>_PORT``, its data under ``.devstack/``). ``drill`` starts a
stack of its own and writes its figures into docs/disaster-recovery.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infra.devstack.managed import DevstackError
from infra.devstack.stack import REPO_ROOT
from infra.dr.commands import Target, backup, restore
from infra.dr.drill import run_drill
from infra.dr.report import render, write_into

DOCUMENT = REPO_ROOT / "docs" / "disaster-recovery.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.dr", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("backup", help="snapshot every database").add_argument("dir", type=Path)
    restoring = commands.add_parser("restore", help="put a snapshot back")
    restoring.add_argument("dir", type=Path)
    restoring.add_argument(
        "--no-rewind", action="store_true", help="leave the consumer groups' offsets as they are"
    )
    drill = commands.add_parser("drill", help="back up, destroy, restore, measure RTO and RPO")
    drill.add_argument("--links", type=int, default=20)
    drill.add_argument("--report", type=Path, default=DOCUMENT)
    drill.add_argument(
        "--no-rewind",
        action="store_true",
        help="skip the offset rewind, to see what it saves (nothing is written to --report)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "backup":
            print(json.dumps(backup(args.dir.resolve(), Target.devstack()), indent=2))
        elif args.command == "restore":
            target = Target.devstack()
            for step in restore(args.dir.resolve(), target, rewind=not args.no_rewind):
                print(step)
            print("now start the stack (make dev): Postgres replays the snapshot's WAL and opens")
        else:
            result = run_drill(links=args.links, rewind=not args.no_rewind)
            section = render(result)
            print(section)
            if args.no_rewind:
                return 0
            write_into(args.report, section)
            return 0 if result.passed else 1
    except DevstackError as exc:
        print(f"dr: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
