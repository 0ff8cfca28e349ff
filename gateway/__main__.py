"""``python -m gateway``: run the gateway."""

from __future__ import annotations

from gateway.config import GatewaySettings
from gateway.main import create_app
from services.chassis.server import serve


def main() -> None:
    settings = GatewaySettings()
    serve(create_app(settings), settings, "gateway")


if __name__ == "__main__":
    main()
