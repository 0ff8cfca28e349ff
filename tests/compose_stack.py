"""The compose stack of ``docker-compose.yml``, run on this machine's engine, for
tests/test_compose*.py.

A project of its own (``shortener-ci-<random>``) on free loopback ports and a
free edge subnet, so that a developer's ``make compose-up`` runs beside it
untouched. What must differ from the file a user runs is written to a
generated override in a temp dir and passed with ``-f``; every point of it is
named here:

- ``build: !reset null``: the images are built beforehand by ``build_images``
  from the Dockerfile as it is (Compose without buildx would use the classic
  builder, which refuses ``RUN --mount``);
- the published ports on free 127.0.0.1 ports, the edge network on a free
  subnet and the gateways trusting the edge's address in it;
- the slow first start of issue 19 point 1: an init script that sleeps
  ``SLOW_INIT_SECONDS`` before the databases are made, as a slow disk would;
- only when the broker is the containers kit's stand-in (tansu, which has
  no idempotent producer): ``*_KAFKA_ENABLE_IDEMPOTENCE=false``;
- only when toxiproxy is the kit's stand-in (Python, where the real one is
  Go): a memory limit of ``STANDIN_TOXIPROXY_MEMORY``. Under the file's
  24M, its healthcheck (``toxiproxy-cli``, Python too) was killed by the
  OOM killer in a CI run, and the container never became healthy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from infra.devstack.processes import free_port
from infra.devstack.stack import REPO_ROOT

__all__ = ["SLOW_INIT_SECONDS", "Stack", "build_images", "docker", "engine_problem"]

SLOW_INIT_SECONDS = 10
# The kit labels its stand-ins (../shared/containers/README.md).
STANDIN_LABEL = "org.local.containers-kit.standin"
STANDIN_TOXIPROXY_MEMORY = "96M"
APP_SERVICES = (
    "init",
    "link",
    "user",
    "analytics",
    "webhooks",
    "gateway-1",
    "gateway-2",
    "locust",
)
IDEMPOTENCE = {
    "link": "LINK_KAFKA_ENABLE_IDEMPOTENCE",
    "analytics": "ANALYTICS_KAFKA_ENABLE_IDEMPOTENCE",
    "webhooks": "WEBHOOKS_KAFKA_ENABLE_IDEMPOTENCE",
    "gateway-1": "GATEWAY_KAFKA_ENABLE_IDEMPOTENCE",
    "gateway-2": "GATEWAY_KAFKA_ENABLE_IDEMPOTENCE",
}
# The host ports compose publishes, by service, and the container port of each.
PUBLISHED = {
    "edge": 8000,
    "toxiproxy": 8474,
    "prometheus": 9090,
    "alertmanager": 9093,
    "locust": 8089,
}


def docker(*args: str, timeout: float = 300, check: bool = True) -> str:
    """Run the docker CLI; its output as text (stderr in the error when it fails)."""
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return done.stdout


def engine_problem() -> str | None:
    """Why no engine can be used here, in one line; None when one answers."""
    if shutil.which("docker") is None:
        return "no docker CLI (CI: ../shared/containers/prepare.sh installs one)"
    try:
        docker("info", "--format", "{{.ServerVersion}}", timeout=30)
        docker("compose", "version", timeout=30)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return f"no Docker engine with Compose answers: {str(exc).splitlines()[-1]}"
    return None


def build_images() -> float:
    """Build shortener:dev and shortener-load:dev from the Dockerfile as it is; seconds taken."""
    has_buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False)
    # Without buildx, Debian's CLI still builds with BuildKit (DOCKER_BUILDKIT=1).
    cli = ["docker", "buildx", "build", "--load"] if has_buildx.returncode == 0 else []
    if not cli:
        cli = [shutil.which("docker", path="/usr/bin") or "docker", "build"]
    started = time.monotonic()
    for target, tag in (("runtime", "shortener:dev"), ("load", "shortener-load:dev")):
        subprocess.run(
            [*cli, "--target", target, "-t", tag, "."],
            cwd=REPO_ROOT,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
            check=True,
            capture_output=True,
            timeout=900,
        )
    return time.monotonic() - started


def _free_subnet() -> str:
    taken = docker("network", "ls", "-q").split()
    used = set()
    for network in json.loads(docker("network", "inspect", *taken)) if taken else []:
        for config in (network.get("IPAM") or {}).get("Config") or []:
            used.add(config.get("Subnet", ""))
    for third in range(200, 255):
        if f"10.254.{third}.0/24" not in used:
            return f"10.254.{third}.0/24"
    raise RuntimeError("no free 10.254.x.0/24 subnet for the edge network")


TOXIPROXY_IMAGE = "ghcr.io/shopify/toxiproxy:2.11.0"


def _standin(image: str) -> bool:
    """Whether ``image`` is one of the containers kit's stand-ins."""
    labels = docker("image", "inspect", image, "--format", "{{json .Config.Labels}}")
    return STANDIN_LABEL in (json.loads(labels) or {})


@dataclass
class Stack:
    """One compose project: ``compose(...)`` runs ``docker compose`` on it."""

    workdir: Path
    project: str = field(default_factory=lambda: f"shortener-ci-{os.urandom(3).hex()}")
    ports: dict[str, int] = field(default_factory=dict)
    standin_broker: bool = False
    override: dict[str, object] = field(default_factory=dict)
    # What the tests measured, and the short link they share (one stack, one story).
    timings: dict[str, float] = field(default_factory=dict)
    code: str = ""

    def write_override(self) -> Path:
        self.ports = {service: free_port() for service in PUBLISHED}
        self.standin_broker = _standin("apache/kafka:3.9.0")
        subnet = _free_subnet()
        edge_ip = subnet.replace(".0/24", ".10")
        slow = self.workdir / "05-slow-disk.sh"
        slow.write_text(
            f"#!/bin/sh\necho 'slow disk: {SLOW_INIT_SECONDS} s'\nsleep {SLOW_INIT_SECONDS}\n"
        )
        services: dict[str, dict[str, object]] = {name: {"build": Reset()} for name in APP_SERVICES}
        for name, variable in IDEMPOTENCE.items():
            if self.standin_broker:
                services[name]["environment"] = {variable: "false"}
        for name in ("gateway-1", "gateway-2"):
            environment = services[name].setdefault("environment", {})
            assert isinstance(environment, dict)
            environment["GATEWAY_TRUSTED_PROXIES"] = f"{edge_ip}/32"
        for name, inner in PUBLISHED.items():
            services.setdefault(name, {})["ports"] = Override(
                [f"127.0.0.1:{self.ports[name]}:{inner}"]
            )
        if _standin(TOXIPROXY_IMAGE):
            limits = {"resources": {"limits": {"memory": STANDIN_TOXIPROXY_MEMORY}}}
            services.setdefault("toxiproxy", {})["deploy"] = limits
        services["edge"]["networks"] = {"edge": {"ipv4_address": edge_ip}}
        services["postgres"] = {
            "volumes": [f"{slow}:/docker-entrypoint-initdb.d/05-slow-disk.sh:ro"]
        }
        self.override = {
            "services": services,
            "networks": {"edge": {"ipam": {"config": Override([{"subnet": subnet}])}}},
        }
        path = self.workdir / "compose.override.yml"
        path.write_text(yaml.dump(self.override, Dumper=_Dumper, sort_keys=False))
        return path

    @property
    def env(self) -> dict[str, str]:
        """What makes a plain ``docker compose`` (or a script) address this project."""
        files = os.pathsep.join(
            [str(REPO_ROOT / "docker-compose.yml"), str(self.workdir / "compose.override.yml")]
        )
        return {**os.environ, "COMPOSE_PROJECT_NAME": self.project, "COMPOSE_FILE": files}

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        done = subprocess.run(
            ["docker", "compose", *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            command = " ".join(args)
            raise RuntimeError(
                f"docker compose {command}: exit {done.returncode}\n{done.stdout}{done.stderr}"
            )
        return done.stdout + done.stderr

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def container_ip(self, service: str, network: str) -> str:
        (container,) = self.compose("ps", "-q", service).split()
        template = f'{{{{(index .NetworkSettings.Networks "{self.project}_{network}").IPAddress}}}}'
        return docker("inspect", "--format", template, container).strip()

    def memory(self) -> list[tuple[str, float, float]]:
        """(container, MiB used, MiB limit) of every running container of the project."""
        ids = self.compose("ps", "-q").split()
        lines = docker("stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *ids)
        return [_usage(line) for line in lines.splitlines() if line.strip()]

    def left_behind(self) -> list[str]:
        """Containers, networks and volumes of the project that still exist."""
        label = f"label=com.docker.compose.project={self.project}"
        return [
            *docker("ps", "-a", "-q", "--filter", label).split(),
            *docker("network", "ls", "-q", "--filter", label).split(),
            *docker("volume", "ls", "-q", "--filter", label).split(),
        ]


def _usage(line: str) -> tuple[str, float, float]:
    name, usage = line.split("\t")
    used, limit = (_mib(part.strip()) for part in usage.split("/"))
    return name, used, limit


def _mib(text: str) -> float:
    units = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    raise ValueError(f"not a size: {text}")


class Reset:
    """Compose's ``!reset null``: drop what the main file says."""


class Override(list[object]):
    """Compose's ``!override [...]``: replace a list instead of appending to it."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Reset, lambda dumper, _: dumper.represent_scalar("!reset", "null"))
_Dumper.add_representer(
    Override, lambda dumper, value: dumper.represent_sequence("!override", list(value))
)
