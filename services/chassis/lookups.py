"""The gateway's batched redirect lookups: the contract between gateway and link service.

A redirect the gateway cannot answer from its memory is a visit the link
service must resolve and count. Under load, many arrive at once; sent one
HTTP request each, the hop costs more CPU than the redirect itself on both
sides (request parsing, middleware, access line, signature check, a Redis
round trip each). So the gateway sends the visits that arrive together as
one ``POST /internal/redirects`` and the link service answers each visit
exactly as ``GET /{code}`` would have, in order: status, headers, body
(docs/adr/0012-batched-redirect-lookups.md)::

    request   {"visits":  [{"code", "click_id", "request_id", "ip", "referer", "user_agent"}]}
    response  {"answers": [{"status", "headers": [[name, value], ...], "body"}]}

Header names and values, and bodies, travel as Latin-1 text, so the bytes a
client receives are the bytes the link service produced: the gateway never
reads a ``Location``, it relays it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import orjson

__all__ = [
    "BATCH_PATH",
    "MAX_VISITS",
    "Answer",
    "Visit",
    "decode_answers",
    "decode_visits",
    "encode_answers",
    "encode_visits",
]

BATCH_PATH: Final = "/internal/redirects"
# Enough to carry every visit a busy gateway holds at once; bounds the work
# one request can ask for.
MAX_VISITS: Final = 256


@dataclass(frozen=True, slots=True)
class Visit:
    """One ``GET /{code}``: what the link service needs to answer and count it."""

    code: str
    click_id: str | None
    request_id: str | None
    ip: str | None
    referer: str | None
    user_agent: str | None


class Answer(NamedTuple):
    """One visit's answer, as the link service would have sent it."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def encode_visits(visits: list[Visit]) -> bytes:
    return orjson.dumps(
        {
            "visits": [
                {
                    "code": v.code,
                    "click_id": v.click_id,
                    "request_id": v.request_id,
                    "ip": v.ip,
                    "referer": v.referer,
                    "user_agent": v.user_agent,
                }
                for v in visits
            ]
        }
    )


def decode_visits(body: bytes) -> list[Visit]:
    """The visits of a batch; ``ValueError`` for anything that is not one."""
    document: Any = orjson.loads(body)
    visits = document.get("visits") if isinstance(document, dict) else None
    if not isinstance(visits, list) or not 0 < len(visits) <= MAX_VISITS:
        raise ValueError(f"visits must be a list of 1 to {MAX_VISITS}")
    return [_visit(item) for item in visits]


def _visit(item: Any) -> Visit:
    if not isinstance(item, dict) or not isinstance(item.get("code"), str):
        raise ValueError("a visit needs a code")
    fields = ("click_id", "request_id", "ip", "referer", "user_agent")
    values = [item.get(name) for name in fields]
    if not all(value is None or isinstance(value, str) for value in values):
        raise ValueError("visit fields are strings or null")
    return Visit(item["code"], *values)


def encode_answers(answers: list[Answer]) -> bytes:
    return orjson.dumps(
        {
            "answers": [
                {
                    "status": a.status,
                    "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in a.headers],
                    "body": a.body.decode("latin-1"),
                }
                for a in answers
            ]
        }
    )


def decode_answers(body: bytes, expected: int) -> list[Answer]:
    """``expected`` answers, in order; ``ValueError`` if the batch says otherwise."""
    document: Any = orjson.loads(body)
    answers = document.get("answers") if isinstance(document, dict) else None
    if not isinstance(answers, list) or len(answers) != expected:
        raise ValueError(f"expected {expected} answers")
    return [
        Answer(
            a["status"],
            [(k.encode("latin-1"), v.encode("latin-1")) for k, v in a["headers"]],
            a["body"].encode("latin-1"),
        )
        for a in answers
    ]
