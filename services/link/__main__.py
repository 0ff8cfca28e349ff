"""``python -m services.link [serve|migrate]``: run the service or its migrations."""

from services.chassis.cli import run
from services.link.config import LinkSettings

if __name__ == "__main__":
    run("link", LinkSettings, lambda settings: settings.database_url)
