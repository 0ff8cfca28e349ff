#!/usr/bin/env bash
# `make kind-up`: a kind cluster running the whole system, from nothing.
# Idempotent: run it again after a code change to rebuild, reload and roll out.
# Needs docker (with an engine), kind >= 0.24 and kubectl on PATH.
set -euo pipefail

CLUSTER=shortener
NAMESPACE=shortener
IMAGE=shortener:dev
# Pinned: the HPAs read CPU from it, and kind does not ship one.
METRICS_SERVER=https://github.com/kubernetes-sigs/metrics-server/releases/download/v0.7.2/components.yaml
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

for tool in docker kind kubectl; do
    command -v "$tool" >/dev/null || { echo "kind-up: $tool not found on PATH" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "kind-up: no Docker engine answers (docker info)" >&2; exit 1; }

if ! kind get clusters | grep -qx "$CLUSTER"; then
    kind create cluster --config k8s/kind-config.yaml
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

docker build --target runtime -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

kubectl apply -f "$METRICS_SERVER" >/dev/null
# kind's kubelets serve self-signed certificates.
if ! kubectl -n kube-system get deployment metrics-server \
    -o jsonpath='{.spec.template.spec.containers[0].args}' | grep -q kubelet-insecure-tls; then
    kubectl -n kube-system patch deployment metrics-server --type=json -p \
        '[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--kubelet-insecure-tls"}]'
fi

rendered="$(mktemp)"
trap 'rm -f "$rendered"' EXIT
kubectl kustomize k8s/overlays/kind >"$rendered"

# Phase 1: namespace, policies, config, data stores, observability.
kubectl apply --server-side -f "$rendered" -l 'app.kubernetes.io/component in (platform,config,datastore,observability)'

# Secrets are made here, once, at random: none is in the repository.
if ! kubectl -n "$NAMESPACE" get secret shortener-secrets >/dev/null 2>&1; then
    secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
    kubectl -n "$NAMESPACE" create secret generic shortener-secrets \
        --from-literal=internal-auth-key="$(secret)" \
        --from-literal=ip-hash-key="$(secret)" \
        --from-literal=postgres-password="$(secret)" \
        --from-literal=link-db-password="$(secret)" \
        --from-literal=users-db-password="$(secret)" \
        --from-literal=analytics-db-password="$(secret)" \
        --from-literal=webhooks-db-password="$(secret)" \
        --from-literal=grafana-admin-password="$(secret)"
fi

kubectl -n "$NAMESPACE" rollout status statefulset/postgres statefulset/kafka deployment/redis --timeout=300s

# Phase 2: migrations and topics. A finished Job cannot be changed: run new ones.
kubectl -n "$NAMESPACE" delete job -l app.kubernetes.io/component=job --ignore-not-found
kubectl apply --server-side -f "$rendered" -l app.kubernetes.io/component=job
kubectl -n "$NAMESPACE" wait --for=condition=complete job -l app.kubernetes.io/component=job --timeout=300s

# Phase 3: the services. A rebuilt image has the same tag: restart to pick it up.
kubectl apply --server-side -f "$rendered" -l app.kubernetes.io/component=app
kubectl -n "$NAMESPACE" rollout restart deployment -l app.kubernetes.io/component=app
for name in link user analytics webhooks gateway; do
    kubectl -n "$NAMESPACE" rollout status "deployment/$name" --timeout=300s
done

cat <<TEXT

gateway:    http://localhost:8080        (API docs: http://localhost:8080/docs)
Jaeger:     kubectl -n $NAMESPACE port-forward svc/jaeger 16686     -> http://localhost:16686
Prometheus: kubectl -n $NAMESPACE port-forward svc/prometheus 9090  -> http://localhost:9090
Grafana:    kubectl -n $NAMESPACE port-forward svc/grafana 3000     -> http://localhost:3000
`make kind-down` deletes the cluster.
TEXT
