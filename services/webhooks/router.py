"""HTTP endpoints of the webhooks service: thin, no SQL, no rules. Owner only."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status
from starlette.responses import Response

from services.chassis.errors import PROBLEM_JSON
from services.chassis.urls import url_refusals
from services.webhooks.dependencies import CurrentUser, WebhookServiceDep
from services.webhooks.models import Endpoint
from services.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    DeliveryPage,
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointOut,
    EndpointUpdate,
    Redelivered,
    RedeliverFailed,
    SecretOut,
    SecretRotate,
)
from services.webhooks.service import DeliveryView
from services.webhooks.signing import message_id

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}
_ERRORS: dict[int | str, dict[str, Any]] = {401: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM}
_URL_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    422: {
        **_PROBLEM,
        "description": url_refusals(
            "Refused. The problem's `code` is `validation_failed` (a field's type or size),\n"
            "or for a refused endpoint URL the reason:",
            without=frozenset({"own_host"}),  # a link's policy: endpoints may be anywhere
        ),
    },
}
EndpointId = Annotated[uuid.UUID, "the endpoint's id"]
MessageId = Annotated[str, "the delivery's webhook-id (msg_...)"]


def _endpoint(endpoint: Endpoint) -> dict[str, Any]:
    return {c: getattr(endpoint, c) for c in EndpointOut.model_fields}


def _delivery(view: DeliveryView) -> DeliveryOut:
    delivery, attempts = view
    return DeliveryOut(
        id=message_id(delivery.id),
        event_type=delivery.event_type,
        state=delivery.state,
        attempt_count=delivery.attempt_count,
        next_attempt_at=delivery.next_attempt_at if delivery.state == "pending" else None,
        created_at=delivery.created_at,
        finished_at=delivery.finished_at,
        attempts=[AttemptOut.model_validate(a, from_attributes=True) for a in attempts],
    )


@router.post("", status_code=status.HTTP_201_CREATED, responses={**_URL_ERRORS, 409: _PROBLEM})
async def create_endpoint(
    data: EndpointCreate, owner: CurrentUser, webhooks: WebhookServiceDep
) -> EndpointCreated:
    """Register an endpoint; the answer holds its signing secret."""
    endpoint = await webhooks.create(owner, data)
    return EndpointCreated(**_endpoint(endpoint), secret=endpoint.secret)


@router.get("", responses=_ERRORS)
async def list_endpoints(owner: CurrentUser, webhooks: WebhookServiceDep) -> EndpointList:
    """The caller's endpoints, oldest first."""
    endpoints = await webhooks.of_owner(owner)
    return EndpointList(items=[EndpointOut(**_endpoint(e)) for e in endpoints])


@router.get("/{endpoint_id}", responses=_ERRORS)
async def get_endpoint(
    endpoint_id: EndpointId, owner: CurrentUser, webhooks: WebhookServiceDep
) -> EndpointOut:
    """One endpoint, with why it is disabled if it is."""
    return EndpointOut(**_endpoint(await webhooks.get(owner, endpoint_id)))


@router.patch("/{endpoint_id}", responses=_URL_ERRORS)
async def update_endpoint(
    endpoint_id: EndpointId, data: EndpointUpdate, owner: CurrentUser, webhooks: WebhookServiceDep
) -> EndpointOut:
    """Change an endpoint; ``enabled`` disables it or enables it again."""
    return EndpointOut(**_endpoint(await webhooks.update(owner, endpoint_id, data)))


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
async def delete_endpoint(
    endpoint_id: EndpointId, owner: CurrentUser, webhooks: WebhookServiceDep
) -> Response:
    """Delete an endpoint and everything owed to it."""
    await webhooks.delete(owner, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{endpoint_id}/secret/rotate", responses=_ERRORS)
async def rotate_secret(
    endpoint_id: EndpointId,
    owner: CurrentUser,
    webhooks: WebhookServiceDep,
    data: Annotated[SecretRotate | None, Body()] = None,
) -> SecretOut:
    """A new signing secret; the old one also signs until the overlap ends."""
    endpoint = await webhooks.rotate(owner, endpoint_id, data or SecretRotate())
    return SecretOut(
        secret=endpoint.secret, previous_secret_expires_at=endpoint.previous_secret_expires_at
    )


@router.post("/{endpoint_id}/test", status_code=status.HTTP_202_ACCEPTED, responses=_ERRORS)
async def send_test_event(
    endpoint_id: EndpointId, owner: CurrentUser, webhooks: WebhookServiceDep
) -> DeliveryOut:
    """Send the endpoint a ``webhook.test`` event."""
    return _delivery(await webhooks.send_test(owner, endpoint_id))


@router.get("/{endpoint_id}/deliveries", responses=_ERRORS)
async def list_deliveries(
    endpoint_id: EndpointId,
    owner: CurrentUser,
    webhooks: WebhookServiceDep,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DeliveryPage:
    """The endpoint's deliveries, newest first, each with its attempts."""
    views, next_cursor = await webhooks.deliveries(owner, endpoint_id, cursor, limit)
    return DeliveryPage(items=[_delivery(v) for v in views], next_cursor=next_cursor)


@router.get("/{endpoint_id}/deliveries/{delivery_id}", responses=_ERRORS)
async def get_delivery(
    endpoint_id: EndpointId, delivery_id: MessageId, owner: CurrentUser, webhooks: WebhookServiceDep
) -> DeliveryOut:
    """One delivery and its attempts."""
    return _delivery(await webhooks.delivery(owner, endpoint_id, delivery_id))


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ERRORS,
)
async def redeliver(
    endpoint_id: EndpointId, delivery_id: MessageId, owner: CurrentUser, webhooks: WebhookServiceDep
) -> DeliveryOut:
    """Send a delivery again, now, under the same ``webhook-id``."""
    return _delivery(await webhooks.delivery(owner, endpoint_id, delivery_id, again=True))


@router.post("/{endpoint_id}/redeliver", status_code=status.HTTP_202_ACCEPTED, responses=_ERRORS)
async def redeliver_failed(
    endpoint_id: EndpointId, data: RedeliverFailed, owner: CurrentUser, webhooks: WebhookServiceDep
) -> Redelivered:
    """Send again every delivery given up on since ``since``."""
    return Redelivered(redelivered=await webhooks.redeliver_failed(owner, endpoint_id, data.since))
