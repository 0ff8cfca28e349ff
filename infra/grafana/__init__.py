"""Grafana dashboards as code: ``python -m infra.grafana`` writes ``dashboards/*.json``."""
