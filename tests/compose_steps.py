"""What tests/test_compose.py asks of a running compose stack, one helper per question."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

import httpx

from tests.compose_stack import Stack

__all__ = ["memory_table", "prometheus_ready", "register_and_login", "wait_healthy"]


def register_and_login(http: httpx.Client) -> dict[str, str]:
    """A fresh account, registered and logged in; its bearer header."""
    credentials = {
        "email": f"e2e-{secrets.token_hex(6)}@example.com",
        "password": secrets.token_urlsafe(18),
    }
    registered = http.post("/api/v1/auth/register", json=credentials)
    assert registered.status_code == 201, registered.text
    login = http.post("/api/v1/auth/login", json=credentials)
    assert login.status_code == 200, login.text
    return {"authorization": f"Bearer {login.json()['access_token']}"}


def wait_healthy(stack: Stack, service: str, timeout: float) -> float:
    """Seconds until ``service`` is running and healthy again."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        state = stack.compose("ps", "--format", "{{.State}} {{.Health}}", service).split()
        if state == ["running", "healthy"]:
            return time.monotonic() - started
        time.sleep(1)
    raise TimeoutError(f"{service} not healthy within {timeout:.0f} s")


def prometheus_ready(url: str, timeout: float) -> tuple[dict[str, str], int]:
    """Each scrape target's health once all have been scraped, and how many rules are loaded."""
    deadline = time.monotonic() + timeout
    targets: dict[str, str] = {}
    while time.monotonic() < deadline:
        active = httpx.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        targets = {t["labels"]["instance"]: t["health"] for t in active}
        if targets and all(health != "unknown" for health in targets.values()):
            break
        time.sleep(2)
    groups = httpx.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    return targets, sum(len(group["rules"]) for group in groups)


def memory_table(rows: Sequence[tuple[str, float, float]]) -> str:
    """``docker stats`` as a table with the tier's sums."""
    lines = [f"{'container':<44} {'used MiB':>9} {'limit MiB':>9}"]
    lines += [f"{name:<44} {used:>9.1f} {limit:>9.0f}" for name, used, limit in sorted(rows)]
    used, limit = sum(r[1] for r in rows), sum(r[2] for r in rows)
    lines.append(f"{'sum (' + str(len(rows)) + ' containers)':<44} {used:>9.1f} {limit:>9.0f}")
    return "\n".join(lines)
