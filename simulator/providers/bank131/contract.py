"""Bank 131's simulated surface as data for the OpenAPI document: the request schemas the views
load, and response schemas mirroring ``views.py`` and the ``{"status": ...}`` wrappers."""
from __future__ import annotations

from marshmallow import Schema, fields

from ..openapi import BUSY, Body, Contract, Operation
from . import schemas as req
from .testcards import SUCCESS_CARD
from .views import ACTION_REQUIRED, PAYMENT_FINISHED, PAYMENT_REFUNDED, READY_TO_CONFIRM

TIME = {"description": "UTC, microseconds: 2026-01-01T00:00:00.000000Z"}


def S(**kw):
    return fields.String(required=kw.pop("required", True), **kw)


class ErrorDetail(Schema):
    code = S()
    description = S()


class Error(Schema):
    status = S(metadata={"enum": ["error"]})
    error = fields.Nested(ErrorDetail, required=True)


class RecurrentToken(Schema):
    token = S()
    created_at = S(metadata=TIME)
    finished_at = S(metadata=TIME)
    is_active = fields.Boolean(required=True)


class AcquiringPayment(Schema):
    id = S()
    status = S(metadata={"enum": ["pending", "in_progress", "succeeded", "failed"]})
    created_at = S(metadata=TIME)
    updated_at = S(metadata=TIME)
    finished_at = S(required=False, metadata=TIME)
    customer = fields.Dict()
    payment_details = fields.Dict(metadata={"description": "the card as brand and last4, or the recurrent token"})
    amount_details = fields.Dict()
    amounts = fields.Dict()
    payment_options = fields.Dict()
    recurrent = fields.Nested(RecurrentToken)
    customer_interaction = fields.Dict(metadata={"description": "where the payer goes for 3-D Secure"})
    refunds = fields.List(fields.Dict())
    metadata = fields.Raw()
    error = fields.Nested(ErrorDetail)


class PaymentSession(Schema):
    id = S()
    status = S(metadata={"enum": ["created", "in_progress", "accepted", "cancelled"]})
    created_at = S(metadata=TIME)
    updated_at = S(metadata=TIME)
    finished_at = S(required=False, metadata=TIME)
    next_action = S(required=False, metadata={"enum": ["confirm", "capture"]})
    error = fields.Nested(ErrorDetail)
    acquiring_payments = fields.List(fields.Nested(AcquiringPayment))
    payment_list = fields.List(fields.Nested(AcquiringPayment), metadata={"description": "API v2 only"})


class SessionAnswer(Schema):
    status = S(metadata={"enum": ["ok"]})
    session = fields.Nested(PaymentSession, required=True)


class TokenAnswer(Schema):
    status = S(metadata={"enum": ["ok"]})
    public_token = S(metadata={"description": "open the widget at /widget/{public_token}"})


class TokenInfoView(RecurrentToken):
    type = S(metadata={"enum": ["recurrent_token"]})


class TokenInfoAnswer(Schema):
    status = S(metadata={"enum": ["ok"]})
    info = fields.Nested(TokenInfoView, required=True)


class RecurrentAnswer(Schema):
    status = S(metadata={"enum": ["ok"]})
    recurrent = fields.Nested(RecurrentToken, required=True)


class Webhook(Schema):
    type = S(metadata={"enum": [READY_TO_CONFIRM, ACTION_REQUIRED, PAYMENT_FINISHED, PAYMENT_REFUNDED]})
    session = fields.Nested(PaymentSession, required=True)


ERROR = Body("invalid_request, session_wrong_state, idempotency_key_already_exists, ... "
             "(every refusal is a 400 in the error envelope)", Error)
IDEMPOTENCY = {"X-PARTNER-IDEMPOTENCY-KEY": "a key already used by this project is refused"}
SESSION = Body("the payment session", SessionAnswer)
CARD = {"type": "card", "card": {"type": "bank_card", "bank_card": {
    "number": SUCCESS_CARD, "expiration_month": "12", "expiration_year": "30", "security_code": "123"}}}
PAYMENT = {"amount_details": {"amount": 10000, "currency": "rub"}, "customer": {"reference": "user-1"},
           "payment_details": CARD, "payment_options": {"recurrent": True}}


def then(*operations: str) -> dict:
    """Links to session methods: they name the session in the body, not the path."""
    return {f"Then{op}": {"operationId": op, "requestBody": {"session_id": "$response.body#/session/id"}}
            for op in operations}


def session_op(summary, request, *, example=None, idempotent=True, links=None, description=""):
    return Operation(summary, {200: Body("the payment session", SessionAnswer, links=links or {}), 400: ERROR},
                     request=request, headers=IDEMPOTENCY if idempotent else {}, tags=("sessions",),
                     example=example, description=description)


CONTRACT = Contract(
    title="Bank 131 (PSP Sandbox)",
    version="1.0",
    description="The subset of Bank 131's acquiring API the sandbox simulates: payment sessions (v1 and v2 "
                "paths), the payment widget with recurrent-token consent, 3-D Secure, recurrent charges, "
                "confirmation, refunds and token status. Every method is a POST with a JSON body.",
    security_schemes={
        "PartnerProject": {"type": "apiKey", "in": "header", "name": "X-PARTNER-PROJECT",
                           "description": "the project id"},
        "PartnerSign": {"type": "apiKey", "in": "header", "name": "X-PARTNER-SIGN",
                        "description": "base64 RSA-SHA256 (PKCS#1 v1.5) signature of the raw body with the "
                                       "project's private key; checked once the project's public key is configured"}},
    unavailable=Body(BUSY, Error),
    common={401: Body("missing project or bad signature (identification_error, authentication_error)", Error),
            413: Body("body larger than 1 MiB", Error)},
    operations={
        "session_create": session_op("Create a payment session", req.SessionCreate,
                                     example={}, links=then("session_start_payment", "session_status")),
        "session_init_payment": session_op(
            "Create a session and start a payment", req.InitPayment, example=PAYMENT,
            links=then("session_status", "session_confirm", "session_refund")),
        "session_init_payment_sync": session_op("Create a session and pay synchronously (no webhooks)",
                                                req.InitPayment, example=PAYMENT),
        "session_start_payment": session_op("Start a payment in a session", req.StartPayment, example=PAYMENT),
        "session_confirm": session_op("Confirm a payment waiting for confirmation", req.SessionRef),
        "session_cancel": session_op("Cancel a session", req.SessionRef),
        "session_capture": session_op("Capture a hold (no payment ever waits for it here)", req.SessionRef,
                                      idempotent=False),
        "session_status": session_op("Get a session's status", req.SessionRef, idempotent=False,
                                     description="The unofficial PyPI client's `session` is read as session_id."),
        "session_refund": session_op("Refund a finished payment", req.SessionRef,
                                     links=then("session_status")),
        "token": Operation("Issue a public token for the payment widget", {
            200: Body("the public token", TokenAnswer), 400: ERROR}, request=req.TokenRequest, headers=IDEMPOTENCY,
            tags=("tokens",)),
        "token_info": Operation("Get a recurrent token's state", {
            200: Body("the token", TokenInfoAnswer), 400: ERROR}, request=req.TokenInfo, tags=("tokens",)),
        "recurrent_status": Operation("Get a recurrent token's state", {
            200: Body("the token", RecurrentAnswer), 400: ERROR}, request=req.RecurrentRef, tags=("tokens",)),
        "recurrent_disable": Operation("Disable a recurrent token", {
            200: Body("the token", RecurrentAnswer), 400: ERROR}, request=req.RecurrentRef, headers=IDEMPOTENCY,
            tags=("tokens",)),
        "widget_page": Operation("The payment widget (card form, recurrent consent checkbox)", {
            200: Body("the page", media="text/html"), 404: Body("unknown public token", media="text/html")},
            hosted=True),
        "widget_submit": Operation("Submit the widget's card form", {
            303: Body("back to the widget, which shows the result", media="text/html"),
            400: Body("the form again with the error", media="text/html"),
            404: Body("unknown public token", media="text/html")}, hosted=True),
        "three_ds_page": Operation("The 3-D Secure page (customer_interaction)", {
            200: Body("the page", media="text/html"), 404: Body("unknown payment", media="text/html")}, hosted=True),
        "three_ds_submit": Operation("Submit the 3-D Secure page (pass or fail)", {
            200: Body("the result, no return URL", media="text/html"),
            303: Body("to return_url or the widget's success/failure URL", media="text/html"),
            404: Body("unknown payment", media="text/html"),
            409: Body("not waiting for 3-D Secure", media="text/html")}, hosted=True),
    },
    webhooks={event: (summary, Webhook) for event, summary in (
        (READY_TO_CONFIRM, "a payment waits for the partner's confirm (or cancel)"),
        (ACTION_REQUIRED, "the payer must pass 3-D Secure"),
        (PAYMENT_FINISHED, "a payment finished (succeeded or failed)"),
        (PAYMENT_REFUNDED, "a refund finished"))},
    webhook_headers={"X-PARTNER-SIGN": "base64 RSA-SHA256 of the body with the sandbox's key "
                                       "(public half at /_sandbox/keys/bank131)"},
)
