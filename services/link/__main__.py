"""``python -m services.link [serve|migrate]``: run the service or its migrations."""

from __future__ import annotations

import argparse
from pathlib import Path

from services.chassis.migrations import upgrade
from services.chassis.server import serve
from services.link.config import LinkSettings
from services.link.main import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.link")
    parser.add_argument("command", choices=["serve", "migrate"], nargs="?", default="serve")
    args = parser.parse_args()
    settings = LinkSettings()
    if args.command == "migrate":
        upgrade(Path(__file__).parent / "migrations", settings.database_url)
    else:
        serve(create_app(settings), settings, "link")


if __name__ == "__main__":
    main()
