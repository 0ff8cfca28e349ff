"""The rules of issue 9 that compose and Kubernetes must keep, checked on the rendered files.

Hardening (non-root, read-only, no capabilities, seccomp), who can reach
whom (published ports, NetworkPolicies, the proxy the gateway trusts), health
gating in compose, the Redis settings in all three environments, and the
observability files the other pieces mount. Static, like test_deploy_static.py.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
import yaml

from tests.deploy_manifests import (
    IMAGE,
    REPO_ROOT,
    TIERS,
    compose_config,
    manifests,
    render_kustomize,
)

WORKLOADS = ("Deployment", "StatefulSet", "Job")
REDIS_POLICY = ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lfu"]


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    services: dict[str, Any] = compose_config("full")["services"]
    return services


@pytest.fixture(scope="module")
def k8s() -> list[dict[str, Any]]:
    return manifests(render_kustomize())


def _pods(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in WORKLOADS
    }


def test_every_pod_is_restricted(k8s: list[dict[str, Any]]) -> None:
    """The Pod Security "restricted" fields, plus limits on every container."""
    for name, pod in _pods(k8s).items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            # Kafka's image writes its configuration at start (docs/deployment.md).
            assert security["readOnlyRootFilesystem"] is (name != "StatefulSet/kafka"), name
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) & set(resources["limits"]), name


def test_our_pods_run_the_image_user_without_an_api_token(k8s: list[dict[str, Any]]) -> None:
    ours = {n: p for n, p in _pods(k8s).items() if p["containers"][0]["image"] == IMAGE}
    assert len(ours) == 10  # five services, five Jobs
    for name, pod in ours.items():
        assert pod["securityContext"]["runAsUser"] == 10001, name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["containers"][0]["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert "USER 10001:10001" in (REPO_ROOT / "Dockerfile").read_text()


def test_scaling_and_disruption_budgets(k8s: list[dict[str, Any]]) -> None:
    hpas = {
        d["spec"]["scaleTargetRef"]["name"] for d in k8s if d["kind"] == "HorizontalPodAutoscaler"
    }
    assert hpas == {"gateway", "link"}
    budgets = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for d in k8s
        if d["kind"] == "PodDisruptionBudget"
    }
    assert budgets == {"gateway", "link", "user", "analytics", "webhooks"}


def test_only_the_gateway_is_reachable_from_outside_the_namespace(
    k8s: list[dict[str, Any]],
) -> None:
    policies = [d for d in k8s if d["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
    assert len(deny) == 1, "a default deny of all ingress"
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            if "from" not in rule:  # from anywhere: only the gateway may say so
                assert policy["spec"]["podSelector"] == {
                    "matchLabels": {"app.kubernetes.io/name": "gateway"}
                }
                continue
            # Sources by pod label only: pods of this namespace, never other namespaces or IPs.
            assert all(set(source) == {"podSelector"} for source in rule["from"]), policy


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions with In) selects ``labels``."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", "only In is used, so only In is understood here"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def _allowed_sources(k8s: list[dict[str, Any]], target: str) -> set[str]:
    """The app.kubernetes.io/name values whose pods may connect to the pods of ``target``."""
    (labels,) = [
        d["spec"]["template"]["metadata"]["labels"]
        for d in k8s
        if d["kind"] in WORKLOADS and d["metadata"]["name"] == target
    ]
    names: set[str] = set()
    for policy in (d for d in k8s if d["kind"] == "NetworkPolicy"):
        if not _selects(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            for source in rule.get("from", []):
                selector = source["podSelector"]
                names.update(selector.get("matchLabels", {}).values())
                for expression in selector.get("matchExpressions", []):
                    names.update(expression["values"])
    return names


def test_each_store_and_service_admits_only_its_clients(k8s: list[dict[str, Any]]) -> None:
    assert _allowed_sources(k8s, "link") == {"gateway", "prometheus"}
    assert _allowed_sources(k8s, "user") == {"gateway", "prometheus"}
    assert _allowed_sources(k8s, "analytics") == {"gateway", "prometheus"}
    assert _allowed_sources(k8s, "webhooks") == {"gateway", "prometheus"}
    assert _allowed_sources(k8s, "postgres") == {"link", "user", "analytics", "webhooks"}
    assert _allowed_sources(k8s, "redis") == {"link", "gateway", "analytics"}
    assert _allowed_sources(k8s, "kafka") == {
        "link",
        "gateway",
        "analytics",
        "webhooks",
        "kafka-topics",
    }


def test_compose_publishes_only_the_edge_and_loopback_tools(full: dict[str, Any]) -> None:
    published = {
        name: [(p.get("host_ip", ""), p["published"]) for p in service.get("ports", [])]
        for name, service in full.items()
    }
    assert published.pop("edge") == [("127.0.0.1", "8000")]
    for name, ports in published.items():
        assert all(host == "127.0.0.1" for host, _ in ports), f"{name} published beyond loopback"
    for app in ("link", "user", "analytics", "webhooks", "gateway-1", "gateway-2", "init"):
        assert published[app] == [], f"{app} must be reached through the edge only"


def test_gateways_trust_exactly_the_edge(full: dict[str, Any]) -> None:
    edge_ip = full["edge"]["networks"]["edge"]["ipv4_address"]
    subnet = compose_config("core")["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(edge_ip) in ipaddress.ip_network(subnet)
    for gateway in ("gateway-1", "gateway-2"):
        assert full[gateway]["environment"]["GATEWAY_TRUSTED_PROXIES"] == f"{edge_ip}/32"
        assert set(full[gateway]["networks"]) == {"backend", "edge"}
    nginx = (REPO_ROOT / "infra/compose/nginx.conf").read_text()
    assert "least_conn;" in nginx
    # Overwritten, never appended to ($proxy_add_x_forwarded_for would keep the client's own).
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx
    assert "server gateway-1:8000" in nginx
    assert "server gateway-2:8000" in nginx


def test_the_edge_keeps_the_replicas_metrics_to_itself() -> None:
    """Prometheus scrapes each replica on the backend network; the edge answers 404
    (tests/test_web_edge.py and tests/test_compose.py ask it for real)."""
    nginx = (REPO_ROOT / "infra/compose/nginx.conf").read_text()
    assert "location ~ ^/metrics/?$ {\n            return 404;" in nginx


@pytest.mark.parametrize("tier", TIERS)
def test_postgres_is_healthy_only_when_it_accepts_tcp(tier: str, k8s: list[dict[str, Any]]) -> None:
    """While the image runs its init scripts the server listens on its socket only;
    ``pg_isready`` without ``-h`` asks the socket and passes too early, and the
    init job, which connects over TCP, fails (tests/test_compose.py reproduces it)."""
    check = compose_config(tier)["services"]["postgres"]["healthcheck"]["test"]
    assert check[:2] == ["CMD", "pg_isready"]
    assert check[check.index("-h") + 1] == "127.0.0.1"
    (postgres,) = _pods(k8s)["StatefulSet/postgres"]["containers"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        command = postgres.get(probe, {}).get("exec", {}).get("command")
        assert command is None or command[command.index("-h") + 1] == "127.0.0.1", probe


@pytest.mark.parametrize("tier", TIERS)
def test_compose_starts_in_order_of_health(tier: str) -> None:
    services = compose_config(tier)["services"]
    for name, service in services.items():
        check = service.get("healthcheck", {})
        # The init job exits when done; its dependants wait for that instead.
        assert check.get("disable", False) is (name == "init"), f"{name}: healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            wanted = "service_completed_successfully" if dependency == "init" else "service_healthy"
            assert condition["condition"] == wanted, f"{name} -> {dependency}"
    for app in ("link", "user", "analytics", "webhooks"):
        assert "init" in services[app]["depends_on"]


def test_our_compose_containers_are_locked_down(full: dict[str, Any]) -> None:
    ours = [name for name, service in full.items() if service["image"].startswith("shortener")]
    assert len(ours) == 8  # init, link, user, analytics, webhooks, two gateways, locust
    for name in ours:
        service = full[name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name


def test_redis_is_the_same_bounded_cache_in_compose_and_kubernetes(
    full: dict[str, Any], k8s: list[dict[str, Any]]
) -> None:
    def joined(args: list[str]) -> str:
        return " ".join(args)

    assert joined(REDIS_POLICY) in joined(full["redis"]["command"])
    (redis,) = _pods(k8s)["Deployment/redis"]["containers"]
    assert joined(REDIS_POLICY) in joined(redis["args"])
    # The limit leaves room above maxmemory for fragmentation and client buffers.
    assert int(full["redis"]["deploy"]["resources"]["limits"]["memory"]) == 96 * 2**20
    assert redis["resources"]["limits"]["memory"] == "96Mi"


def test_prometheus_scrapes_what_compose_runs(full: dict[str, Any]) -> None:
    config = yaml.safe_load((REPO_ROOT / "infra/prometheus/prometheus-compose.yml").read_text())
    for job in config["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            host, port = target.split(":")
            if host == "localhost":
                continue
            environment = full[host].get("environment", {})
            ports = {v for k, v in environment.items() if k.endswith("_PORT")} or {port}
            assert port in ports, f"{target}: compose runs {host} on {ports}"


def test_kubernetes_ships_every_grafana_dashboard(k8s: list[dict[str, Any]]) -> None:
    (dashboards,) = [
        d
        for d in k8s
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("grafana-dashboards")
    ]
    on_disk = {path.name for path in (REPO_ROOT / "infra/grafana/dashboards").glob("*.json")}
    assert set(dashboards["data"]) == on_disk
