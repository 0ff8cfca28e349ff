"""``POST /api/v1/links`` without FastAPI's routing, for a well-formed body.

Creation is the one write measured against the floor (docs/performance.md,
row d), and FastAPI's routing, dependency solving and response validation
took about a third of the link service's CPU per creation there. A body
FastAPI would accept is parsed and validated as FastAPI does it
(``json.loads``, then the model in Python mode), ``create_link`` is called
with what FastAPI would inject, and its answer is serialized as FastAPI
0.165 does it (the response model's ``dump_json``, 201). Anything else (no
JSON content type, a body that does not decode or validate) is handed to
FastAPI with the body replayed, so every refusal is FastAPI's own.
tests/test_create_shortcut.py holds both ways to the same answers.
"""

from __future__ import annotations

import json
from typing import Final

from fastapi import Request
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.chassis.identity import identity_of
from services.link.batch import handled
from services.link.router import create_link
from services.link.schemas import LinkCreate, LinkOut

__all__ = ["CREATE_PATH", "serve_create"]

CREATE_PATH: Final = "/api/v1/links"
_OUT = TypeAdapter(LinkOut)


async def serve_create(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Create the link a valid JSON body describes; anything else is FastAPI's to answer."""
    request = Request(scope, receive)
    body = await request.body()
    data = _parsed(scope, body)
    if data is None:
        await app(scope, _replay(body, receive), send)
        return
    scope["route_template"] = CREATE_PATH
    response = await handled(request, _create(request, data))
    await response(scope, receive, send)


async def _create(request: Request, data: LinkCreate) -> Response:
    """What FastAPI's route answers, as FastAPI 0.165 writes a response model."""
    state = request.app.state
    created = await create_link(data, identity_of(request.scope), state.links, state.settings)
    return Response(_OUT.dump_json(created), 201, media_type="application/json")


def _parsed(scope: Scope, body: bytes) -> LinkCreate | None:
    """The body as the route's model, where FastAPI would read it as JSON and accept it."""
    if not body or not _is_json(scope):
        return None
    try:
        return LinkCreate.model_validate(json.loads(body))
    except (ValueError, ValidationError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None


def _is_json(scope: Scope) -> bool:
    """``application/json`` exactly, parameters aside: the common case. FastAPI
    also reads ``+json`` types and a missing type as JSON; those go to it."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            essence: bytes = value.split(b";", 1)[0].strip().lower()
            return essence == b"application/json"
    return False


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
