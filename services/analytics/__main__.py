"""``python -m services.analytics [serve|migrate]``: run the service or its migrations."""

from __future__ import annotations

import argparse
from pathlib import Path

from services.analytics.config import AnalyticsSettings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.analytics")
    parser.add_argument("command", choices=["serve", "migrate"], nargs="?", default="serve")
    args = parser.parse_args()
    settings = AnalyticsSettings()
    # Each command imports only what it runs: the web stack and the
    # User-Agent rules cost a second of CPU that a migration job should not pay.
    if args.command == "migrate":
        from services.chassis.migrations import upgrade  # noqa: PLC0415

        upgrade(Path(__file__).parent / "migrations", settings.database_url)
    else:
        from services.analytics.main import create_app  # noqa: PLC0415
        from services.chassis.server import serve  # noqa: PLC0415

        serve(create_app(settings), settings, "analytics")


if __name__ == "__main__":
    main()
