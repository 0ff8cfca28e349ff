"""``python -m services.analytics [serve|migrate]``: run the service or its migrations."""

from services.analytics.config import AnalyticsSettings
from services.chassis.cli import run

if __name__ == "__main__":
    run("analytics", AnalyticsSettings, lambda settings: settings.database_url)
