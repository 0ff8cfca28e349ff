"""API models of the link service (never the ORM classes)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = ["LinkCreate", "LinkOut", "RedirectType"]

RedirectType = Literal[301, 302, 307, 308]


class LinkCreate(BaseModel):
    """A link to create. The URL and alias are checked by the service."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=4096,  # url_problem says why past 2048; this only bounds the work
        examples=["https://example.com/some/long/path?with=query"],
    )
    alias: str | None = Field(default=None, max_length=256, examples=["launch-2026"])
    expires_at: AwareDatetime | None = Field(
        default=None, description="After this instant the link answers 410 Gone."
    )
    redirect_type: RedirectType = Field(
        default=302,
        description="301/308 are permanent (browsers may cache them, and cached visits are "
        "not counted); 302/307 are temporary. 307/308 keep the request method.",
    )


class LinkOut(BaseModel):
    """A short link as the API shows it."""

    code: str
    short_url: str
    url: str
    created_at: datetime
    expires_at: datetime | None
    redirect_type: RedirectType
