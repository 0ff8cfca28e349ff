"""OpenAPI documents that tell the truth about errors.

FastAPI documents a 422 body of its own shape (``HTTPValidationError``); our
handlers answer every error with a problem document instead. ``document``
rewrites each 4xx/5xx response of an app's schema to the ``Problem`` schema,
so generated clients and schema-driven fuzzers (schemathesis, in CI) check
the bodies the services really send.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from services.chassis.errors import PROBLEM_JSON

__all__ = ["PROBLEM_REF", "Problem", "install_problem_schema", "problem_response_doc"]

PROBLEM_REF = "#/components/schemas/Problem"


class FieldError(BaseModel):
    loc: list[str | int]
    type: str
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem document; ``code`` is the stable machine-readable part."""

    status: int
    code: str
    title: str
    detail: str
    request_id: str | None = None
    errors: list[FieldError] | None = None


def problem_response_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }


def _rewrite(doc: dict[str, Any]) -> dict[str, Any]:
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            if "requestBody" in operation:
                operation["responses"].setdefault("400", {"description": "Malformed JSON"})
            for status, response in operation.get("responses", {}).items():
                if status[0] in "45" and not _has_own_body(response):
                    description = response.get("description") or "Error"
                    operation["responses"][status] = problem_response_doc(description)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schemas["Problem"].pop("$defs", {}))
    return doc


def _has_own_body(response: dict[str, Any]) -> bool:
    # An error declared with a model of its own (/readyz's 503 is a report,
    # not a problem); FastAPI's HTTPValidationError is not one of ours.
    refs = [
        media.get("schema", {}).get("$ref", "") for media in response.get("content", {}).values()
    ]
    return any(ref and not ref.endswith("/HTTPValidationError") for ref in refs)


def install_problem_schema(app: FastAPI) -> None:
    """Make ``app.openapi()`` document problem bodies for every error status."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _rewrite(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
