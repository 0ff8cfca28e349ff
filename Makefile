# The two commands a newcomer needs: `make dev` runs the system, `make test` tests it.
.DEFAULT_GOAL := help
PY := .venv/bin/python

.PHONY: help install dev down status test lint fmt clean bench-pipeline bench load dr-drill api-docs bench-tracing compose-up compose-down compose-chaos chaos-webhooks test-compose kind-up kind-down rules-test chaos screenshots

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Install what is missing (Debian postgres/redis, uv, .venv); safe to repeat
	@./infra/bootstrap.sh

dev: install ## Run the whole stack as local processes (Ctrl-C stops it)
	@$(PY) -m infra.devstack up

down: ## Stop a stack left running, by PID
	@$(PY) -m infra.devstack down

status: ## Show what the local stack runs
	@$(PY) -m infra.devstack status

test: install ## Run the test suite against real Postgres, Redis and broker
	@$(PY) -m pytest --ignore-glob='tests/test_compose*.py'

test-compose: install ## The compose stack end to end on this machine's Docker engine (~6 min; own project, free ports)
	@$(PY) -m pytest -rs tests/test_compose.py

rules-test: install ## Prometheus rules and alert unit tests, Alertmanager config, dashboards up to date
	@promtool check rules infra/prometheus/rules/*.yml
	@promtool test rules infra/prometheus/tests/*.yml
	@amtool check-config infra/alertmanager/alertmanager.yml
	@$(PY) -m infra.grafana --check

lint: install ## ruff (lint and format check) and mypy --strict
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy --strict services gateway infra loadtests chaos tests

fmt: install ## Format the code and apply safe lint fixes
	@$(PY) -m ruff format .
	@$(PY) -m ruff check --fix .

bench-pipeline: install ## Measure the click pipeline (own stack on free ports) -> docs/performance-pipeline.md
	@$(PY) -m loadtests.bench_pipeline

bench: install ## Measure the redirect hot path against a bare floor (own stack, 7-14 min) -> docs/performance.md
	@$(PY) -m loadtests.bench_redirect

bench-tracing: install ## Redirect throughput with tracing off, 1 %, 100 % (own stacks, ~3 min) -> docs/performance-tracing.md
	@$(PY) -m loadtests.bench_tracing

load: install ## Locust against the running `make dev` (LOAD_SECONDS=30) -> .devstack/load/, docs/performance.md
	@$(PY) -m loadtests.load

chaos: install ## Fault experiments against the running `make dev` (~5 min) -> docs/chaos-report.md
	@$(PY) -m chaos

dr-drill: install ## Back up, destroy and restore the databases on an own stack; RTO/RPO -> docs/disaster-recovery.md
	@$(PY) -m infra.dr drill

api-docs: install ## Export the OpenAPI documents and event schemas the services serve -> docs/api/
	@$(PY) -m infra.apidocs

screenshots: install ## Browser tests of the web page (Debian's chromium), screenshots -> docs/screenshots/
	@WEB_SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest -q tests/test_web_browser.py

clean: install ## Stop the stack and delete its state (.devstack/, and Postgres's data wherever it lives)
	@$(PY) -m infra.devstack clean

TIER ?= core

chaos-webhooks: install ## A webhook receiver down, then back: every event once per webhook-id, delay, throughput (own stack, ~2 min) -> docs/chaos-report.md
	@$(PY) -m chaos.webhooks

compose-up: ## Run the system in Docker: TIER=core (default) or TIER=full (+ observability, Locust)
	@./infra/compose/up.sh $(TIER)

compose-down: ## Stop the compose stack, every tier (the Postgres volume stays)
	@docker compose --profile full down

compose-chaos: install ## Latency between the gateways and the link service: breaker opens, published links still answered (running compose stack)
	@./infra/compose/chaos.sh

kind-up: ## Create a kind cluster, build and load the image, deploy, print the URL (k8s/)
	@./k8s/kind-up.sh

kind-down: ## Delete the kind cluster of `make kind-up`
	@./k8s/kind-down.sh
