"""``python -m services.<name> [serve|migrate|...]``: one entry point for every service.

Each command imports only what it runs: the web stack costs about a second of
CPU that a migration job (run at every start, locally, in compose and as a
Kubernetes Job) should not pay.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from services.chassis.config import ServiceSettings

__all__ = ["run"]


S = TypeVar("S", bound=ServiceSettings)


def run(
    service: str,
    settings: Callable[[], S],
    database_url: Callable[[S], str],
    extra: Mapping[str, Callable[[S], None]] | None = None,
) -> None:
    """Parse the command line of ``python -m services.<service>`` and run the command."""
    commands = {"serve": None, "migrate": None, **(extra or {})}
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    parser.add_argument("command", choices=list(commands), nargs="?", default="serve")
    command = parser.parse_args().command
    chosen = settings()
    if command == "migrate":
        from services.chassis.migrations import upgrade  # noqa: PLC0415

        package = importlib.import_module(f"services.{service}")
        upgrade(Path(package.__path__[0]) / "migrations", database_url(chosen))
    elif command == "serve":
        from services.chassis.server import serve  # noqa: PLC0415

        main = importlib.import_module(f"services.{service}.main")
        serve(main.create_app(chosen), chosen, service)
    else:
        handler = commands[command]
        assert handler is not None
        handler(chosen)
