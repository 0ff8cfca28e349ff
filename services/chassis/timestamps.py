"""Instants as the OpenAPI documents promise them: RFC 3339 date-times.

Pydantic reads far more than RFC 3339 as a datetime: numbers and numeric
strings as Unix seconds (``to=0.5`` was 1970), dates without a time, times
without an offset. A document that says ``format: date-time`` and a service
that reads ``0.5`` disagree; ``Rfc3339`` makes the service keep the promise.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import AwareDatetime, BeforeValidator

__all__ = ["RFC3339_PATTERN", "Rfc3339"]

# RFC 3339 section 5.6: full-date "T" full-time, the offset required ("T" and
# "Z" may be lower case, section 5.6's note). Ranges are pydantic's to check.
RFC3339_PATTERN: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.IGNORECASE
)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, str) and RFC3339_PATTERN.fullmatch(value):
        return value
    if isinstance(value, str | int | float | bool):
        raise ValueError("Expected an RFC 3339 date-time, like 2026-01-31T12:00:00Z.")
    return value  # a datetime built in Python, or a type pydantic refuses itself


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
"""An RFC 3339 date-time with its offset; anything else is a validation error."""
