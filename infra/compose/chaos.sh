#!/usr/bin/env bash
# `make compose-chaos`: the latency experiment of chaos/ against the running
# compose stack: toxiproxy delays the link service past the gateway's timeout.
# Published links go on being answered by the gateway (its memory, the link
# service's read model); visit-limited links, whose every visit needs the link
# service, must be refused with 504 or 503 and open the gateway's link breaker.
# Aimed at one replica, gateway-1, on its address on the edge network: each
# replica has its own breaker, and the edge does not serve /metrics, where the
# breaker's state is read. Container addresses are reachable from the host on
# Linux engines (not from Docker Desktop's VM).
set -euo pipefail
cd "$(dirname "$0")/../.."

container="$(docker compose ps -q gateway-1)"
[ -n "$container" ] || { echo "compose-chaos: gateway-1 is not running: make compose-up first" >&2; exit 1; }
project="$(docker inspect -f '{{index .Config.Labels "com.docker.compose.project"}}' "$container")"
address="$(docker inspect -f "{{(index .NetworkSettings.Networks \"${project}_edge\").IPAddress}}" "$container")"
toxiproxy="$(docker compose port toxiproxy 8474)"

exec .venv/bin/python -m chaos --target compose --only latency-link \
    --gateway "http://${address}:8000" --toxiproxy "http://${toxiproxy}" \
    --report "${CHAOS_REPORT:-.devstack/chaos-compose.md}"
