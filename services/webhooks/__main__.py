"""``python -m services.webhooks [serve|migrate]``: run the service or its migrations."""

from services.chassis.cli import run
from services.webhooks.config import WebhooksSettings

if __name__ == "__main__":
    run("webhooks", WebhooksSettings, lambda settings: settings.database_url)
