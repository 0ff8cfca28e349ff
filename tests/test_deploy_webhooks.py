"""Issue 18's webhooks service in compose and Kubernetes, checked on the rendered files.

The service itself is built on another branch, so its settings class is not
here for tests/test_deploy_static.py to check names against; the names agreed
with that branch are listed below instead (fold them into ``SETTINGS`` of
tests/deploy_manifests.py once services/webhooks/config.py is merged). What
matters most here is the egress: private targets refused by default in every
environment, and a NetworkPolicy that lets the pods reach only DNS, their
database, Kafka, the OTLP collector and public addresses on 80 and 443.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.deploy_manifests import REPO_ROOT, compose_config, manifests, render_kustomize

PORT = 8004
AGREED = {
    "WEBHOOKS_HOST",
    "WEBHOOKS_PORT",
    "WEBHOOKS_DATABASE_URL",
    "WEBHOOKS_DB_POOL_SIZE",
    "WEBHOOKS_DB_MAX_OVERFLOW",
    "WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS",
    "WEBHOOKS_KAFKA_ENABLE_IDEMPOTENCE",
    "WEBHOOKS_ALLOW_PRIVATE_TARGETS",
    "WEBHOOKS_ALLOWED_NETWORKS",
    "INTERNAL_AUTH_KEY",
}
EXTRA = re.compile(r"OTEL_[A-Z_]+|DB_PASSWORD")
# Where a delivery must never go, whatever the service's own check does.
NEVER = [
    "0.0.0.0", "10.0.0.1", "10.96.0.1", "10.244.1.7", "100.64.0.1", "100.100.100.200",
    "127.0.0.1", "169.254.169.254", "172.16.0.1", "172.18.0.2", "192.168.1.1",
    "224.0.0.1", "255.255.255.255", "::1", "::", "::ffff:127.0.0.1", "fd00:ec2::254",
    "fe80::1", "ff02::1",
]  # fmt: skip
PUBLIC = ["93.184.215.14", "1.1.1.1", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]


@dataclass(frozen=True)
class Rendered:
    compose: dict[str, Any]  # the full tier's services
    k8s: list[dict[str, Any]]


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    return Rendered(compose_config("full")["services"], manifests(render_kustomize()))


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _container(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    containers: list[dict[str, Any]] = _one(docs, kind, name)["spec"]["template"]["spec"][
        "containers"
    ]
    (container,) = containers
    return container


def _env(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, str]:
    container = _container(docs, kind, name)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(_one(docs, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
    env.update({e["name"]: e.get("value", "<secret>") for e in container.get("env", [])})
    return env


def test_it_runs_like_the_other_services(rendered: Rendered) -> None:
    full, k8s = rendered.compose, rendered.k8s
    service = full["webhooks"]
    assert service["command"] == ["python", "-m", "services.webhooks", "serve"]
    assert service["environment"]["WEBHOOKS_PORT"] == str(PORT)
    assert service["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert "python -m services.webhooks migrate" in " ".join(full["init"]["command"])
    for env in (service["environment"], full["init"]["environment"]):
        assert env["WEBHOOKS_DATABASE_URL"].endswith("@postgres:5432/webhooks")
    assert "webhooks" in full["postgres"]["environment"]["SERVICE_DATABASES"].split()
    assert "WEBHOOKS_DB_PASSWORD" in full["postgres"]["environment"]

    container = _container(k8s, "Deployment", "webhooks")
    assert container["command"] == ["python", "-m", "services.webhooks", "serve"]
    assert container["ports"] == [{"name": "http", "containerPort": PORT}]
    assert _env(k8s, "Deployment", "webhooks")["WEBHOOKS_PORT"] == str(PORT)
    assert [p["port"] for p in _one(k8s, "Service", "webhooks")["spec"]["ports"]] == [PORT]
    assert _container(k8s, "Job", "webhooks-migrate")["command"][-2:] == [
        "services.webhooks",
        "migrate",
    ]
    postgres = {e["name"]: e for e in _container(k8s, "StatefulSet", "postgres")["env"]}
    assert "webhooks" in postgres["SERVICE_DATABASES"]["value"].split()
    secret = postgres["WEBHOOKS_DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"]
    assert f"--from-literal={secret}=" in (REPO_ROOT / "k8s/kind-up.sh").read_text()


def test_it_is_given_only_the_agreed_variables(rendered: Rendered) -> None:
    full, k8s = rendered.compose, rendered.k8s
    for place, names in {
        "compose": set(full["webhooks"]["environment"]),
        "k8s": set(_env(k8s, "Deployment", "webhooks")),
    }.items():
        unknown = sorted(n for n in names - AGREED if not EXTRA.fullmatch(n))
        assert not unknown, f"{place} sets variables webhooks does not read: {unknown}"
        assert names >= AGREED, f"{place} lacks {sorted(AGREED - names)}"


def test_the_gateway_routes_to_it(rendered: Rendered) -> None:
    full, k8s = rendered.compose, rendered.k8s
    url = f"http://webhooks:{PORT}"
    for gateway in ("gateway-1", "gateway-2"):
        assert full[gateway]["environment"]["GATEWAY_WEBHOOKS_SERVICE_URL"] == url
        assert full[gateway]["depends_on"]["webhooks"]["condition"] == "service_healthy"
    assert _env(k8s, "Deployment", "gateway")["GATEWAY_WEBHOOKS_SERVICE_URL"] == url


def test_private_targets_are_refused_by_default_everywhere(rendered: Rendered) -> None:
    full, k8s = rendered.compose, rendered.k8s
    for env in (full["webhooks"]["environment"], _env(k8s, "Deployment", "webhooks")):
        assert env["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] == "false"
        assert env["WEBHOOKS_ALLOWED_NETWORKS"] == ""


def _egress(k8s: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The egress rules that apply to the webhooks pods (exactly one policy has any)."""
    (policy,) = [
        d
        for d in k8s
        if d["kind"] == "NetworkPolicy"
        and "Egress" in d["spec"]["policyTypes"]
        and d["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/name") == "webhooks"
    ]
    rules: list[dict[str, Any]] = policy["spec"]["egress"]
    return rules


def _reaches(rules: list[dict[str, Any]], address: str, port: int) -> bool:
    """Whether an ipBlock rule lets a TCP connection to ``address:port`` out."""
    ip = ipaddress.ip_address(address)
    for rule in rules:
        if {"port": port, "protocol": "TCP"} not in rule["ports"]:
            continue
        for peer in rule["to"]:
            block = peer.get("ipBlock")
            if block is None or ip.version != ipaddress.ip_network(block["cidr"]).version:
                continue
            inside = ip in ipaddress.ip_network(block["cidr"])
            if inside and not any(ip in ipaddress.ip_network(n) for n in block["except"]):
                return True
    return False


def test_its_pods_reach_the_public_internet_on_80_and_443_only(rendered: Rendered) -> None:
    k8s = rendered.k8s
    rules = _egress(k8s)
    for address in PUBLIC:
        assert _reaches(rules, address, 443), address
        assert _reaches(rules, address, 80), address
        assert not _reaches(rules, address, 8080), address
    for address in NEVER:
        assert not any(_reaches(rules, address, port) for port in (80, 443)), address


def test_its_pods_reach_in_the_cluster_only_dns_and_their_dependencies(rendered: Rendered) -> None:
    k8s = rendered.k8s
    inside = set()
    for rule in _egress(k8s):
        for peer in rule["to"]:
            if "ipBlock" in peer:
                continue
            name = next(iter(peer["podSelector"]["matchLabels"].values()))
            namespace = peer.get("namespaceSelector", {}).get("matchLabels", {})
            ports = tuple(sorted((p["port"], p.get("protocol", "TCP")) for p in rule["ports"]))
            inside.add((namespace.get("kubernetes.io/metadata.name", "own"), name, ports))
    assert inside == {
        ("kube-system", "kube-dns", ((53, "TCP"), (53, "UDP"))),
        ("own", "postgres", ((5432, "TCP"),)),
        ("own", "kafka", ((9092, "TCP"),)),
        ("own", "jaeger", ((4318, "TCP"),)),
    }


def test_prometheus_scrapes_it(rendered: Rendered) -> None:
    k8s = rendered.k8s
    compose_prometheus = (REPO_ROOT / "infra/prometheus/prometheus-compose.yml").read_text()
    assert f'- targets: ["webhooks:{PORT}"]' in compose_prometheus
    # Kubernetes finds every pod labelled component=app with a port named http.
    labels = _one(k8s, "Deployment", "webhooks")["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "app"
