"""Errors of the webhooks domain, each with its HTTP status and code::

    NotFoundError            404
    ├── EndpointNotFound         endpoint_not_found  (also another user's)
    └── DeliveryNotFound         delivery_not_found
    ConflictError            409
    └── TooManyEndpoints         too_many_endpoints
    DomainError
    └── InvalidCursor        422 invalid_cursor

A refused endpoint URL is the chassis's ``InvalidUrl`` family (422,
``unsupported_scheme``, ``credentials_in_url``...:
services/chassis/url_errors.py, docs/links-urls.md), the link service's
targets being read the same way; malformed bodies get the chassis's
``validation_failed``; an anonymous caller ``authentication_required``.
"""

from __future__ import annotations

from services.chassis.errors import ConflictError, DomainError, NotFoundError

__all__ = ["DeliveryNotFound", "EndpointNotFound", "InvalidCursor", "TooManyEndpoints"]


class EndpointNotFound(NotFoundError):
    """404 for another user's endpoint too: its existence is nobody else's business."""

    code = "endpoint_not_found"
    title = "Endpoint not found"


class DeliveryNotFound(NotFoundError):
    code = "delivery_not_found"
    title = "Delivery not found"


class TooManyEndpoints(ConflictError):
    code = "too_many_endpoints"
    title = "Too many endpoints"


class InvalidCursor(DomainError):
    status_code = 422
    code = "invalid_cursor"
    title = "Invalid cursor"
