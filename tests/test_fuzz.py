"""Schema-driven fuzzing of the public API through the gateway (schemathesis).

Every operation of the gateway's merged OpenAPI document is called with
generated inputs, valid and invalid, as a registered user. Every response
must be no 5xx and must conform to the document: a documented status, the
documented content type and headers, and the documented body schema.

Schemathesis runs as its CLI: its lazy pytest loader does not work with
pytest 9.2 (it writes a private attribute pytest no longer has).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.accounts import register

# Per operation; the run prints how many cases it generated in all.
EXAMPLES_PER_OPERATION = 30
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)


def test_every_operation_answers_as_documented(gateway_url: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=gateway_url) as http:
        token = register(http).access_token
    report = tmp_path / "report.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{gateway_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--checks",
            CHECKS,
            "--seed",
            "20261121",
            "--request-timeout",
            "10",
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    print(run.stdout[-4000:])  # the summary, with the number of generated cases
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert report.exists()
    assert json.loads(report.read_text())
