"""``python -m services.user [serve|migrate|rotate-key]``: run the service, its migrations,
or a signing key rotation."""

import asyncio

from services.chassis.cli import run
from services.user.config import UserSettings


def rotate_key(settings: UserSettings) -> None:
    from services.user.keys import rotate  # noqa: PLC0415 - only this command needs it

    # The new kid is the command's output, for scripts that log or check it.
    print(asyncio.run(rotate(settings)))


if __name__ == "__main__":
    run("user", UserSettings, lambda settings: settings.database_url, {"rotate-key": rotate_key})
