"""API models of the link service (never the ORM classes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from services.chassis.timestamps import Rfc3339

__all__ = ["MAX_VISITS_LIMIT", "LinkCreate", "LinkOut", "LinkPage", "LinkUpdate", "RedirectType"]

RedirectType = Literal[301, 302, 307, 308]
_URL = Field(
    max_length=4096,  # the service says why past 2048; this only bounds the work
    examples=["https://example.com/some/long/path?with=query"],
)
_EXPIRES = Field(default=None, description="After this instant the link answers 410 Gone.")
# A bound that keeps the number meaningful; a link needing more needs no limit.
MAX_VISITS_LIMIT = 1_000_000_000


def _integral(value: Any) -> Any:
    # JSON Schema's integer is any number without a fraction: 5.0 is one.
    return int(value) if isinstance(value, float) and value.is_integer() else value


VisitLimit = Annotated[
    int,
    Field(ge=1, le=MAX_VISITS_LIMIT, strict=True),  # "5", 5.5 and true are mistakes
    BeforeValidator(_integral),  # listed after: it runs first
]
_MAX_VISITS = Field(
    default=None,
    description=(
        "After this many redirects the link answers 410 Gone (visit_limit_reached). "
        "Counted exactly, in the database; such a link is never cached or replayed, "
        "and cannot be a permanent (301/308) redirect."
    ),
)
_REDIRECT_DOC = (
    "301/308 are permanent (browsers may cache them, and cached visits are not counted); "
    "302/307 are temporary. 307/308 keep the request method."
)


class LinkCreate(BaseModel):
    """A link to create. The URL and alias are checked by the service."""

    model_config = ConfigDict(extra="forbid")

    url: str = _URL
    alias: str | None = Field(default=None, max_length=256, examples=["launch-2026"])
    expires_at: Rfc3339 | None = _EXPIRES
    redirect_type: RedirectType = Field(default=302, description=_REDIRECT_DOC)
    max_visits: VisitLimit | None = _MAX_VISITS


def _not_nullable(schema: dict[str, Any]) -> None:
    """Document a field that may be left out but not sent as ``null``.

    Python reads a left-out field as None; the document must not offer
    ``null`` for it, which the validator below refuses.
    """
    schema.pop("default", None)
    variants = [v for v in schema.pop("anyOf") if v.get("type") != "null"]
    (only,) = variants
    schema.update(only)


class LinkUpdate(BaseModel):
    """Fields to change; those left out stay as they are (``null`` clears expiry or limit)."""

    # minProperties: the document says what the validator says, at least one field.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    url: str | None = Field(default=None, max_length=4096, json_schema_extra=_not_nullable)
    expires_at: Rfc3339 | None = _EXPIRES
    redirect_type: RedirectType | None = Field(
        default=None, description=_REDIRECT_DOC, json_schema_extra=_not_nullable
    )
    max_visits: VisitLimit | None = _MAX_VISITS

    @model_validator(mode="after")
    def _something_to_change(self) -> LinkUpdate:
        if not self.model_fields_set:
            raise ValueError("Give at least one of url, expires_at, redirect_type, max_visits.")
        if "url" in self.model_fields_set and self.url is None:
            raise ValueError("url cannot be null.")
        if "redirect_type" in self.model_fields_set and self.redirect_type is None:
            raise ValueError("redirect_type cannot be null.")
        return self


class LinkOut(BaseModel):
    """A short link as the API shows it."""

    code: str
    short_url: str
    url: str
    created_at: datetime
    expires_at: datetime | None
    redirect_type: RedirectType
    max_visits: int | None
    visits: int | None = Field(
        description="Redirects served while a visit limit was set; null for anyone but the "
        "owner of an owned link (usage is the owner's, like its stats)."
    )


class LinkPage(BaseModel):
    """One page of links; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[LinkOut]
    next_cursor: str | None
