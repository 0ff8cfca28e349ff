"""Each service imports only itself and the chassis; the gateway, only the chassis.

Services are deployed, scaled and rolled apart (k8s/, docker-compose.yml):
one that imported another's modules would ship and depend on its internals,
and a change there would break it without a contract saying so. What two
services share lives in ``services/chassis`` (event schemas and decoding,
the batch consumer, URL parsing, the redirect read model's entry).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())
OWNERS = [name for name in SERVICES if name != "chassis"]


def _imported(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def _foreign(package: Path, allowed: set[str]) -> list[str]:
    """``file: module`` for every import of a service package not in ``allowed``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for module in sorted(_imported(path)):
            parts = module.split(".")
            if parts[0] == "services" and len(parts) > 1 and parts[1] not in allowed:
                found.append(f"{path.relative_to(ROOT)}: {module}")
    return found


def test_the_services_are_found() -> None:
    assert {"analytics", "chassis", "link", "user", "webhooks"} <= set(SERVICES)


@pytest.mark.parametrize("service", OWNERS)
def test_a_service_imports_only_itself_and_the_chassis(service: str) -> None:
    assert _foreign(ROOT / "services" / service, {service, "chassis"}) == []


def test_the_chassis_imports_no_service() -> None:
    assert _foreign(ROOT / "services" / "chassis", {"chassis"}) == []


def test_the_gateway_imports_only_the_chassis() -> None:
    assert _foreign(ROOT / "gateway", {"chassis"}) == []


def test_a_foreign_import_is_found(tmp_path: Path) -> None:
    """The check itself: an import of another service is reported."""
    package = tmp_path / "services" / "webhooks"
    package.mkdir(parents=True)
    (package / "bad.py").write_text("from services.analytics.consumer import BatchConsumer\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(f"{__name__}.ROOT", tmp_path)
        assert _foreign(package, {"webhooks", "chassis"}) == [
            "services/webhooks/bad.py: services.analytics.consumer"
        ]
