"""``python -m services.user [serve|migrate|rotate-key]``: run the service, its migrations,
or a signing key rotation."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from services.user.config import UserSettings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.user")
    parser.add_argument(
        "command", choices=["serve", "migrate", "rotate-key"], nargs="?", default="serve"
    )
    args = parser.parse_args()
    settings = UserSettings()
    # Each command imports only what it runs: the web stack costs a second
    # of CPU that a migration job (run at every start) should not pay.
    if args.command == "migrate":
        from services.chassis.migrations import upgrade  # noqa: PLC0415

        upgrade(Path(__file__).parent / "migrations", settings.database_url)
    elif args.command == "rotate-key":
        from services.user.keys import rotate  # noqa: PLC0415

        # The new kid is the command's output, for scripts that log or check it.
        print(asyncio.run(rotate(settings)))
    else:
        from services.chassis.server import serve  # noqa: PLC0415
        from services.user.main import create_app  # noqa: PLC0415

        serve(create_app(settings), settings, "user")


if __name__ == "__main__":
    main()
