"""The gateway's own behaviour: health, request ids, docs, upstream failures."""

from __future__ import annotations

import socket
import time

import httpx

from infra.devstack.processes import free_port
from tests.conftest import Infra, running_gateway


def test_health_and_readiness(client: httpx.Client, analytics_url: str, webhooks_url: str) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {
            "link": "ok",
            "user": "ok",
            "analytics": "ok",
            "webhooks": "ok",
            "redis": "ok",
        },
    }


def test_the_link_service_reports_its_dependencies(link_url: str) -> None:
    ready = httpx.get(f"{link_url}/readyz").json()
    assert ready == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok", "kafka": "ok"}}


def test_a_sane_request_id_is_kept_and_a_bad_one_replaced(client: httpx.Client) -> None:
    kept = client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    replaced = client.get("/api/v1/links/nope", headers={"x-request-id": "bad id\\n{}"})
    assert replaced.headers["x-request-id"] != "bad id\\n{}"
    assert replaced.json()["request_id"] == replaced.headers["x-request-id"]


def test_the_public_openapi_document_merges_the_services(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    assert {
        "/api/v1/links",
        "/api/v1/links/{code}",
        "/{code}",
        "/api/v1/auth/login",
        "/api/v1/users/me",
        "/api/v1/api-keys",
    } <= set(doc["paths"])
    assert not any(path.startswith("/internal") for path in doc["paths"])
    assert "/metrics" not in doc["paths"]
    assert "LinkCreate" in doc["components"]["schemas"]
    # Operations that need a user say which credentials they take.
    schemes = doc["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["HTTPBearer"].items()
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"
    assert {"HTTPBearer": []} in doc["paths"]["/api/v1/users/me"]["get"]["security"]
    assert client.get("/docs").status_code == 200


def test_what_the_gateway_answers_itself_is_in_the_document(client: httpx.Client) -> None:
    # Bad credentials, a limit, an upstream away or slow, a body too large:
    # the gateway answers these before or instead of any service.
    doc = client.get("/openapi.json").json()
    for path, item in doc["paths"].items():
        if path in {"/healthz", "/readyz"}:
            continue
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"401", "429", "503", "504"} <= set(responses), (method, path)
            retry_after = responses["429"]["headers"]["Retry-After"]["$ref"]
            assert retry_after == "#/components/headers/Retry-After", (method, path)
            if "requestBody" in operation:
                assert "413" in responses, (method, path)
    assert doc["components"]["headers"]["Retry-After"]["required"]
    readiness = doc["paths"]["/readyz"]["get"]["responses"]["503"]
    assert readiness["content"]["application/json"]["schema"]["$ref"].endswith("/Readiness")


def test_unknown_gateway_paths_are_404_problems(client: httpx.Client) -> None:
    response = client.get("/api/v2/whatever")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_an_unreachable_upstream_is_a_fast_503_not_a_500(infra: Infra) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with running_gateway(infra, nowhere) as gateway:
        response = httpx.post(f"{gateway}/api/v1/links", json={"url": "https://example.com"})
        assert response.status_code == 503
        assert response.json()["code"] == "upstream_unavailable"
        assert response.headers["retry-after"] == "1"
        ready = httpx.get(f"{gateway}/readyz").json()
        assert ready["status"] == "degraded"
        assert ready["checks"]["link"] == "down"


def test_a_silent_upstream_is_a_504_within_the_timeout(infra: Infra) -> None:
    # An upstream that accepts connections and never answers (a fake on cue).
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        with running_gateway(
            infra, f"http://127.0.0.1:{port}", link_timeout_seconds="0.5"
        ) as gateway:
            started = time.monotonic()
            response = httpx.get(f"{gateway}/api/v1/links/abc", timeout=10)
            assert response.status_code == 504
            assert response.json()["code"] == "upstream_timeout"
            assert time.monotonic() - started < 3
