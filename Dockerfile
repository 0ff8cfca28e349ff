# One image for every service: they share the chassis and every dependency,
# and differ only by the command (`python -m services.link`, `python -m gateway`...).
# Stages:
#   deps     the locked third-party dependencies (rebuilt only when uv.lock changes)
#   app      deps + our code, non-root, read-only friendly
#   load     app + Locust, for the compose `full` tier   -> shortener-load:<tag>
#   runtime  the default target: app as it is             -> shortener:<tag>
# Multi-arch: `docker buildx build --platform linux/amd64,linux/arm64` (docs/deployment.md).

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS deps
COPY --from=uv /uv /usr/local/bin/uv
# Compiled bytecode at build time, because the root filesystem is read-only at
# run time; copies, not hard links, because the cache is a separate mount.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Only the lock and the manifest are inputs of this layer: a code change
# reuses it, and the cache mount keeps wheels across lock changes.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --no-install-project

FROM ${PYTHON_IMAGE} AS app
# A fixed numeric id, so Kubernetes can check runAsNonRoot without a passwd lookup.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app
WORKDIR /app
COPY --from=deps /app/.venv /app/.venv
COPY services/ services/
COPY gateway/ gateway/
COPY infra/__init__.py infra/
COPY infra/compose/ infra/compose/
COPY infra/devstack/ infra/devstack/
COPY loadtests/ loadtests/
RUN python -m compileall -q services gateway infra loadtests
USER 10001:10001
# The services listen on 8000-8004; each process reads its own *_PORT.
EXPOSE 8000 8001 8002 8003 8004
# Readiness of whichever service this container runs (infra/compose/healthcheck.py).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-m", "infra.compose.healthcheck"]
CMD ["python", "-m", "gateway"]

FROM deps AS load-deps
# Locust is a dev dependency: installed here only, at the versions uv.lock pins
# (the export is a constraints file, so nothing else of the dev group comes in).
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv export --frozen --no-hashes --no-emit-project --all-groups -o /tmp/constraints.txt \
    && uv pip install --python /app/.venv/bin/python --constraints /tmp/constraints.txt locust

FROM app AS load
COPY --from=load-deps /app/.venv /app/.venv
EXPOSE 8089
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-m", "infra.compose.healthcheck", "http://127.0.0.1:8089/"]
CMD ["python", "-m", "locust", "-f", "loadtests/locustfile.py"]

# Last, so that a plain `docker build .` gives the service image.
FROM app AS runtime
