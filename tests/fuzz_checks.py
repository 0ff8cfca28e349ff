"""The one schemathesis check tuned to this API, loaded by tests/test_fuzz.py.

Schemathesis's ``positive_data_acceptance`` fails any schema-valid request
answered 422. Ours answer 422 for two different reasons, told apart by the
problem's ``code``: ``validation_failed`` when the request breaks what the
document says (a mismatch between document and validator: the defect that
check exists to find), and a domain code (``invalid_link``,
``invalid_password``, ``invalid_range``...) for rules JSON Schema cannot
state: an expiry in the future, a password that is not the email address, a
range no longer than three years. This check replaces it and keeps its
teeth: a schema-valid request refused as ``validation_failed`` (or with any
status a valid request should never get) still fails the run.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, Response

# Schemathesis's own expectation for valid data (401/403: credentials are
# not data; 404/409: the resource, not the request)...
_ACCEPTED = frozenset({401, 403, 404, 409, 429})
# ...and a link that expired or spent its visits is gone whatever the request.
_GONE = 410


def _problem_code(response: Response) -> str | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


@schemathesis.check
def positive_data_meets_only_domain_rules(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """A schema-valid request is refused only by a rule the schema cannot state."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status >= 500 or status in _ACCEPTED or status == _GONE:
        return None
    code = _problem_code(response)
    if status == 422 and code not in {None, "validation_failed"}:
        return None
    raise AssertionError(
        f"A schema-valid request was refused: {status} {code}. The document and the "
        "validator disagree (or a domain rule answered without its own code)."
    )
