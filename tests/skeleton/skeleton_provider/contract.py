"""The skeleton's simulated surface as data for its OpenAPI document (``GET /skeleton/openapi.json``):
the request schema the create view loads, and response schemas mirroring ``views.py`` and the
error envelope of ``__init__.py``. Every routed endpoint needs an entry in ``operations`` (the
document refuses to build without one), and every status a view can answer needs a row, or the
contract tests fail on it."""
from __future__ import annotations

from marshmallow import Schema, fields

from simulator.providers.openapi import BUSY, Body, Contract, Operation

from . import ERRORS
from . import schemas as req
from .machine import PAYMENT
from .testcards import DECLINE_CODES

# the events the machine emits: "payment." and every status a payment can move to
EVENTS = [f"payment.{state}" for state in PAYMENT.states if state in set(PAYMENT.edges.values())]
TIME = {"description": "UTC, whole seconds: 2026-01-01T00:00:00Z"}


def S(**kw):
    return fields.String(required=kw.pop("required", True), **kw)


class FieldError(Schema):
    field = S(metadata={"description": "the dotted path of the field in the request"})
    message = S()


class ErrorDetail(Schema):
    code = S(metadata={"enum": sorted({spec.code for spec in ERRORS.values()})})
    message = S()
    # data_key: a field attribute named "fields" would hide the schema's own ``fields``
    field_errors = fields.List(fields.Nested(FieldError), data_key="fields",
                               metadata={"description": "invalid_fields: every failing field, in order"})
    decline_code = S(required=False, metadata={"enum": list(DECLINE_CODES), "description": "declined only"})


class Error(Schema):
    error = fields.Nested(ErrorDetail, required=True)


class Payment(Schema):
    id = S(metadata={"description": "pay_ and 16 characters"})
    status = S(metadata={"enum": list(PAYMENT.states)})
    amount = fields.Integer(required=True, metadata={"description": "minor units"})
    currency = S(metadata={"description": "ISO 4217, upper case"})
    created_at = S(metadata=TIME)
    decline_code = S(required=False, metadata={"enum": list(DECLINE_CODES), "description": "declined only"})


class Webhook(Schema):
    type = S(metadata={"enum": EVENTS})
    data = fields.Nested(Payment, required=True)


NOT_FOUND = Body("not_found: unknown payment id (or another key's)", Error)
UNKNOWN = Body("not_found: unknown payment id", Error)   # the customer's call names no key
# any route: a form body is read before the view runs (a JSON one only by a view that parses it)
TOO_LARGE = Body("malformed_request: body larger than 1 MiB", Error)
PAY_ID = {"payment_id": "$response.body#/id"}

CONTRACT = Contract(
    title="Skeleton (PSP Sandbox)",
    version="1.0",
    description="The skeleton provider: the smallest complete provider, the template a new one starts "
                "from. A payment is created pending, then authorized or declined by the customer "
                "(POST /pay/{payment_id}), or expired after 15 minutes of the sandbox's clock.",
    security_schemes={"ApiKey": {"type": "http", "scheme": "bearer",
                                 "description": "an API key starting sk_, 'Bearer <key>'; the key is the tenant"}},
    unavailable=Body(BUSY, Error),
    common={401: Body("unauthorized: no Bearer key, or one not starting sk_", Error), 413: TOO_LARGE},
    operations={
        "create_payment": Operation("Create a payment (pending; expires after 15 minutes)", {
            201: Body("the payment", Payment, links={
                "ThenGetPayment": {"operationId": "get_payment", "parameters": PAY_ID},
                "ThenPay": {"operationId": "pay_page_submit", "parameters": PAY_ID}}),
            400: Body("invalid_fields (with fields), or malformed_request: the body is not a JSON object",
                      Error)},
            request=req.CreatePayment, tags=("payments",),
            example={"amount": 1000, "currency": "EUR", "webhook_url": "http://127.0.0.1:9000/hooks"}),
        "get_payment": Operation("Get a payment", {200: Body("the payment", Payment), 404: NOT_FOUND},
                                 tags=("payments",)),
        "pay_page_submit": Operation("The customer pays a pending payment", {
            200: Body("authorized", Payment),
            402: Body("declined, with its decline_code (an amount ending in 51, or a scenario)", Error),
            404: UNKNOWN,
            409: Body("invalid_state: the payment is no longer pending", Error),
            413: TOO_LARGE}, tags=("customer",),
            description="What the customer's browser posts (no credentials). The skeleton has no page of "
                        "its own: this answers JSON; a provider with a hosted page renders it from "
                        "templates/ and documents it as text/html with hosted=True."),
    },
    webhooks={event: (f"{event}: the payment, in its new status", Webhook) for event in EVENTS},
    webhook_headers={"Skeleton-Signature": "hex HMAC-SHA256 of the body with the webhook secret"},
)
