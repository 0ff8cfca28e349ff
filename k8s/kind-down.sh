#!/usr/bin/env bash
# `make kind-down`: delete the kind cluster of `make kind-up`, and with it everything in it.
set -euo pipefail
command -v kind >/dev/null || { echo "kind-down: kind not found on PATH" >&2; exit 1; }
kind delete cluster --name shortener
