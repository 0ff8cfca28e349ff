#!/usr/bin/env bash
# `make compose-up [TIER=core|full]`: build, start, wait until every container
# is healthy (or, for the init job, done), then print where everything is.
set -euo pipefail
tier="${1:-core}"
cd "$(dirname "$0")/../.."

case "$tier" in
    core) profile=(); export OTEL_TRACES_EXPORTER="${OTEL_TRACES_EXPORTER:-none}" ;;
    full) profile=(--profile full); export OTEL_TRACES_EXPORTER="${OTEL_TRACES_EXPORTER:-otlp}" ;;
    *) echo "compose-up: TIER must be core or full, not '$tier'" >&2; exit 1 ;;
esac
docker compose version >/dev/null 2>&1 || { echo "compose-up: needs Docker with Compose v2 (docker compose)" >&2; exit 1; }

docker compose "${profile[@]}" up --detach --build --wait --wait-timeout 300

echo
echo "gateway:      http://localhost:8000   (API docs: http://localhost:8000/docs; nginx edge, two replicas)"
echo "toxiproxy:    http://127.0.0.1:8474   (API; proxy \"link\" between the gateways and the link service)"
if [ "$tier" = full ]; then
    echo "Grafana:      http://127.0.0.1:3000"
    echo "Jaeger:       http://127.0.0.1:16686"
    echo "Prometheus:   http://127.0.0.1:9090"
    echo "Alertmanager: http://127.0.0.1:9093"
    echo "Locust:       http://127.0.0.1:8089"
fi
echo "\`make compose-down\` stops it (the Postgres volume stays; \`docker compose down -v\` deletes it)."
