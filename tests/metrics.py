"""Reading one sample from a process's /metrics, as Prometheus would."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def metric(base_url: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` with exactly ``labels``; 0 when absent."""
    text = httpx.get(f"{base_url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0
