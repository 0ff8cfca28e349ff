"""Export the API documents from what the system serves: ``make api-docs``.

Starts a stack of its own on free ports (the launchers of ``make dev``),
fetches ``/openapi.json`` from the gateway and from every service, and
writes them to ``docs/api/openapi-<name>.json``. The gateway's document is
the one it serves: its own routes merged with the upstreams' documents at
run time (``gateway/openapi.py``), which only running upstreams can give.

The event contracts are exported from the code too: a JSON Schema per
event and version (``docs/api/events/``, from the dataclasses in
``services/chassis/events.py``) and ``docs/api/events.md`` around them.
``tests/test_api_docs.py`` fails when any of these differ from what the
code serves, so the files cannot drift.

    python -m infra.apidocs            # write docs/api/
    python -m infra.apidocs --check    # exit 1 if docs/api/ is stale
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from pydantic import TypeAdapter

from infra.devstack.stack import REPO_ROOT, SERVICES, Ports, start_stack, stop_stack
from infra.devstack.state import StateDir
from services.chassis.events import (
    CLICKS_DLQ_TOPIC,
    CLICKS_TOPIC,
    LINKS_TOPIC,
    TOPICS,
    LinkChanged,
    LinkClicked,
)

__all__ = ["API_DIR", "EVENTS", "documents", "event_schemas", "events_markdown", "fetch"]

API_DIR = REPO_ROOT / "docs" / "api"


def _version(event: type[Any]) -> int:
    """The ``schema_version`` an event is published with (its field's default)."""
    version = next(f.default for f in dataclasses.fields(event) if f.name == "schema_version")
    if not isinstance(version, int):
        raise TypeError(f"{event.__name__}.schema_version has no integer default")
    return version


# Event class -> (topic, version): the contracts consumers rely on.
EVENTS: dict[type[Any], tuple[str, int]] = {
    LinkClicked: (CLICKS_TOPIC, _version(LinkClicked)),
    LinkChanged: (LINKS_TOPIC, _version(LinkChanged)),
}


def fetch(urls: dict[str, str]) -> dict[str, dict[str, Any]]:
    """name -> the OpenAPI document served at ``<url>/openapi.json``."""
    with httpx.Client(timeout=10, trust_env=False) as http:
        served = {}
        for name, url in urls.items():
            response = http.get(f"{url}/openapi.json")
            response.raise_for_status()
            served[name] = response.json()
        return served


def event_schemas() -> dict[str, dict[str, Any]]:
    """File name -> the JSON Schema of each event contract, generated from its dataclass."""
    schemas = {}
    for event, (topic, version) in EVENTS.items():
        schema = TypeAdapter(event).json_schema()
        schema["$id"] = f"{event.__name__}.v{version}"
        schema["x-topic"] = topic
        # A consumer of version N may reject anything else: say so in the schema.
        schema["properties"]["schema_version"]["const"] = version
        schemas[f"{event.__name__}.v{version}.schema.json"] = schema
    return schemas


def events_markdown() -> str:
    rows = [
        f"| [`{event.__name__}`](events/{event.__name__}.v{version}.schema.json) | {version} "
        f"| `{topic}` ({TOPICS[topic]} partitions) | the link code |"
        for event, (topic, version) in EVENTS.items()
    ]
    fields = []
    for event in EVENTS:
        properties = TypeAdapter(event).json_schema()["properties"]
        doc = " ".join((event.__doc__ or "").split())
        fields.append(f"### `{event.__name__}`\n\n{doc}\n\n| field | type |\n|---|---|")
        fields.extend(f"| `{name}` | {_type(spec)} |" for name, spec in properties.items())
        fields.append("")
    return "\n".join(
        [
            "# Event contracts",
            "",
            "Written by `make api-docs` (infra/apidocs.py) from `services/chassis/events.py`;",
            "do not edit by hand. The JSON Schemas beside this file are generated from the same",
            "dataclasses, and `tests/test_api_docs.py` fails when they drift.",
            "",
            "| event | version | topic | key |",
            "|---|---|---|---|",
            *rows,
            "",
            "Every event carries `schema_version`. A consumer accepts the versions it",
            "knows and sends anything else (and anything it cannot decode) to the",
            f"dead-letter topic `{CLICKS_DLQ_TOPIC}` for clicks. A change that old",
            "consumers could misread is a new version, published beside the old one until",
            "every consumer reads it; adding an optional field is not. Delivery is",
            "at-least-once: consumers deduplicate by `event_id`.",
            "",
            *fields,
        ]
    )


def _type(spec: dict[str, Any]) -> str:
    if "anyOf" in spec:
        return " or ".join(_type(option) for option in spec["anyOf"])
    if "enum" in spec:
        return " / ".join(f"`{value}`" for value in spec["enum"])
    kind = str(spec.get("type", "any"))
    return f"{kind} ({spec['format']})" if "format" in spec else kind


def documents(served: dict[str, dict[str, Any]]) -> dict[Path, str]:
    """Every file of docs/api/ (relative path -> text) for the served OpenAPI documents."""
    files = {
        Path(f"openapi-{name}.json"): json.dumps(doc, indent=2, sort_keys=True) + "\n"
        for name, doc in served.items()
    }
    for name, schema in event_schemas().items():
        files[Path("events") / name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    files[Path("events.md")] = events_markdown()
    return files


def _serve_and_fetch() -> dict[str, dict[str, Any]]:
    ports = Ports.free()
    state = StateDir(Path(tempfile.mkdtemp(prefix="apidocs-", dir="/tmp")))
    try:
        processes = start_stack(ports, state)  # on failure it stops what it started
        try:
            return fetch({spec.service: spec.url(ports) for spec in SERVICES})
        finally:
            stop_stack(processes, state)
    finally:
        shutil.rmtree(state.root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    files = documents(_serve_and_fetch())
    stale = [p for p, text in files.items() if not (API_DIR / p).is_file()
             or (API_DIR / p).read_text() != text]  # fmt: skip
    if args.check:
        for path in stale:
            print(f"stale: docs/api/{path} (run make api-docs)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in files.items():
        (API_DIR / path).parent.mkdir(parents=True, exist_ok=True)
        (API_DIR / path).write_text(text)
    print(f"wrote {len(files)} files to {API_DIR} ({len(stale)} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
