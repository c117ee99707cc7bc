"""ZafaPay's simulated surface as data for the OpenAPI document: the request schemas the views load,
and response schemas mirroring ``views.py``, the error object and the flat webhook payload."""
from __future__ import annotations

from marshmallow import Schema, fields

from ..openapi import BUSY, Body, Contract, Operation
from . import schemas as req
from .machine import PAYMENT, PAYMENT_METHOD
from .views import EVENTS

PAYMENT_STATUSES = sorted(set(PAYMENT.states) - {"new"})
CARD_STATUSES = sorted(PAYMENT_METHOD.states)
TIME = {"description": "UTC with milliseconds: 2026-01-01T00:00:00.000Z"}
MONEY = {"description": "major units with two decimals, as a string: \"10.00\""}


def S(**kw):
    return fields.String(required=True, **kw)


def SN(**kw):
    return fields.String(required=True, allow_none=True, **kw)


def IN(**kw):
    return fields.Integer(required=True, allow_none=True, **kw)


class ErrorDetail(Schema):
    param = S()
    message = S()


class ErrorObject(Schema):
    type = S(metadata={"enum": ["invalid_request_error", "payment_error", "authentication_error", "api_error"]})
    code = S()
    message = S()
    request_id = S()
    param = fields.String()
    details = fields.List(fields.Nested(ErrorDetail))
    transaction_id = fields.String(metadata={"description": "a declined charge: the failed transaction"})


class Error(Schema):
    error = fields.Nested(ErrorObject, required=True)


class PaymentCreated(Schema):
    id = S(metadata={"description": "the payment request id (req_)"})
    status = S(metadata={"enum": PAYMENT_STATUSES})
    amount = fields.Float(required=True)
    currency = S()
    external_id = SN()
    metadata = fields.Dict(required=True, allow_none=True)
    flow_id = S()
    payment_type = S(metadata={"enum": ["single", "initial", "recurring", "token"]})
    payment_url = fields.String(metadata={"description": "single and initial payments: the hosted page"})
    transaction_id = fields.String(metadata={"description": "recurring and token payments"})
    capture_method = fields.String(metadata={"enum": ["automatic", "manual"]})
    payment_method_id = fields.String()
    customer_id = fields.String()
    redirect_url = fields.String(metadata={"description": "requires_action: the 3-D Secure page"})
    created_at = S(metadata=TIME)


class RefundItem(Schema):
    id = S()
    amount = S(metadata=MONEY)
    status = S()
    reason = SN()
    created_at = S(metadata=TIME)


class Payment(Schema):
    id = S(metadata={"description": "the transaction id once paid, the request id while pending"})
    request_id = S()
    status = S(metadata={"enum": PAYMENT_STATUSES})
    payment_type = S()
    amount = S(metadata=MONEY)
    currency = S()
    capture_method = S()
    external_id = SN()
    payment_method = S()
    amount_refunded = S(metadata=MONEY)
    original_amount = S(metadata=MONEY)
    original_currency = S()
    applied_rate = SN()
    card_brand = SN()
    card_last4 = SN()
    cardholder_name = SN()
    card_exp_month = IN()
    card_exp_year = IN()
    card_country = SN()
    card_funding = SN()
    payment_method_id = SN()
    is_recurring = fields.Boolean(required=True)
    customer_id = SN()
    email = SN()
    tel = SN()
    product_name = SN()
    error_code = SN()
    flow_id = S()
    connector = S()
    psp_reference = SN()
    refunds = fields.List(fields.Nested(RefundItem), required=True)
    metadata = fields.Dict(required=True, allow_none=True)
    created_at = S(metadata=TIME)
    updated_at = S(metadata=TIME)


class Captured(Schema):
    id = S()
    status = S(metadata={"enum": PAYMENT_STATUSES})
    amount = fields.Float(required=True)


class StatusChange(Schema):
    id = S()
    status = S()
    updated_at = S(metadata=TIME)


class Blocked(StatusChange):
    blocked_reason = SN()


class Refunded(Schema):
    id = S()
    transaction_id = S()
    amount = S(metadata=MONEY)
    currency = S()
    status = S()
    reason = SN()
    psp_refund_id = SN()
    refund_fee = S(metadata=MONEY)
    created_at = S(metadata=TIME)


class TokenCard(Schema):
    bin = S()
    last4 = S()
    brand = S()
    exp_month = fields.Integer(required=True)
    exp_year = fields.Integer(required=True)


class Token(Schema):
    id = S()
    card = fields.Nested(TokenCard, required=True)
    connector_id = S()
    created_at = S(metadata=TIME)
    expires_at = S(metadata=TIME)


class SavedCardDetails(TokenCard):
    class Meta:
        exclude = ("bin",)


class SavedCard(Schema):
    id = S()
    type = S(metadata={"enum": ["card"]})
    connector_id = S()
    card = fields.Nested(SavedCardDetails, required=True)
    is_default = fields.Boolean(required=True)
    status = S(metadata={"enum": CARD_STATUSES})
    blocked_reason = SN()
    created_at = S(metadata=TIME)


class SavedCards(Schema):
    customer_id = S()
    payment_methods = fields.List(fields.Nested(SavedCard), required=True)


DECLINE = {"type": "object", "required": ["code", "category", "message", "recommended_action"],
           "properties": {k: {"type": "string"} for k in ("code", "category", "message", "recommended_action")},
           "additionalProperties": False}


class Webhook(Schema):
    event = S(metadata={"enum": list(EVENTS)})
    transaction_id = S()
    merchant_id = S()
    merchant_name = S()
    status = S(metadata={"enum": ["succeeded", "failed", "canceled", "refunded", "chargeback"]})
    amount = S(metadata=MONEY)
    currency = S()
    payment_method = S()
    payment_method_id = fields.String()
    is_recurring = fields.Boolean(required=True)
    save_card = fields.Boolean()
    external_id = SN()
    product_name = SN()
    customer_id = SN()
    email = SN()
    tel = SN()
    amount_refunded = fields.String(metadata=MONEY)
    error = fields.Raw(metadata={"oneOf": [{"type": "string"}, DECLINE],
                                 "description": "payment.failed: the decline (an object, or its message when "
                                                "webhook_error_format is string)"})
    card_brand = SN()
    card_last4 = SN()
    cardholder_name = SN()
    card_exp_month = IN()
    card_exp_year = IN()
    metadata = fields.Dict(required=True)
    created_at = S(metadata=TIME)
    timestamp = S(metadata=TIME)


INVALID = Body("validation_error, invalid_status, invalid_amount, a decline (payment_error) ...", Error)
NOT_FOUND = Body("unknown id (or another key's)", Error)
IN_FLIGHT = Body("idempotency_key_in_use: the same Idempotency-Key is still in progress", Error)
IDEMPOTENCY = {"Idempotency-Key": "1 to 255 characters; the same key and body replay the stored answer "
                                  "(Idempotent-Replayed: true)"}
PAY_ID = "$request.path.payment_id"


def links(parameter: str, source: str, *operations: str) -> dict:
    return {f"Then{op}": {"operationId": op, "parameters": {parameter: source}} for op in operations}


def op(summary, responses, tag, *, idempotent=True, **kw):
    if idempotent:
        responses = {409: IN_FLIGHT, **responses}
    return Operation(summary, responses, tags=(tag,), headers=IDEMPOTENCY if idempotent else {}, **kw)


CONTRACT = Contract(
    title="ZafaPay (PSP Sandbox)",
    version="1.0",
    description="The subset of ZafaPay's API the sandbox simulates: hosted single and initial payments "
                "(card saved for later), recurring charges on a saved card, token charges with 3-D Secure, "
                "capture, void, refund, tokens and saved cards. POST /_sandbox/payments/{id}/chargeback is "
                "the sandbox's own control, not ZafaPay's.",
    security_schemes={"ApiKey": {"type": "http", "scheme": "bearer",
                                 "description": "the merchant API key, 'Bearer <key>'"}},
    unavailable=Body(BUSY, Error),
    common={401: Body("missing or unknown API key", Error), 413: Body("body larger than 1 MiB", Error),
            415: Body("the body is not application/json", Error)},
    field_types={req.Amount: ("number", None)},
    operations={
        "create_payment": op("Create a payment", {
            201: Body("hosted: payment_url; recurring / token: the charge", PaymentCreated,
                      links={"ThenGetPayment": {"operationId": "get_payment",
                                                "parameters": {"payment_id": "$response.body#/id"}},
                             **links("payment_id", "$response.body#/transaction_id", "capture", "void")}),
            202: Body("a token charge that needs 3-D Secure: redirect_url", PaymentCreated),
            400: INVALID, 404: NOT_FOUND}, "payments", request=req.CreatePayment,
            example={"amount": 10.00, "currency": "usd", "customer_id": "cus-1", "save_card": True,
                     "external_id": "order-1", "email": "jane@example.com"}),
        "get_payment": op("Get a payment (by transaction or request id)", {
            200: Body("the payment", Payment), 404: NOT_FOUND}, "payments", idempotent=False),
        "capture": op("Capture an authorized payment", {
            200: Body("captured", Captured, links=links("payment_id", PAY_ID, "get_payment", "refund")),
            400: INVALID, 404: NOT_FOUND}, "payments", request=req.Capture, example={}),
        "void": op("Void an authorized payment", {
            200: Body("canceled", StatusChange, links=links("payment_id", PAY_ID, "get_payment")),
            400: INVALID, 404: NOT_FOUND}, "payments", request=req.Capture, example={}),
        "refund": op("Refund a payment (in full or in part)", {
            200: Body("the refund", Refunded, links=links("payment_id", PAY_ID, "get_payment")),
            400: INVALID, 404: NOT_FOUND}, "payments", request=req.Refund,
            example={"amount": 1.00, "reason": "requested_by_customer"}),
        "create_token": op("Tokenize a card (30 minutes, single use)", {
            201: Body("the token", Token, links={"ThenChargeIt": {
                "operationId": "create_payment",
                "requestBody": {"token": "$response.body#/id", "capture_method": "manual"}}}),
            400: INVALID}, "tokens", request=req.CreateToken,
            example={"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}}),
        "list_payment_methods": op("List a customer's saved cards", {
            200: Body("the cards", SavedCards), 404: NOT_FOUND}, "saved cards", idempotent=False),
        "block": op("Block a saved card", {200: Body("blocked", Blocked), 400: INVALID, 404: NOT_FOUND},
                    "saved cards", request=req.Block, example={"reason": "fraud suspected"}),
        "unblock": op("Unblock a saved card", {200: Body("active again", StatusChange), 400: INVALID,
                                               404: NOT_FOUND}, "saved cards"),
        "detach": op("Detach (delete) a saved card", {200: Body("detached", StatusChange), 400: INVALID,
                                                      404: NOT_FOUND}, "saved cards"),
        "chargeback": op("Sandbox control: send payment.chargeback for a paid payment", {
            200: Body("the payment (unchanged)", Payment), 400: INVALID, 404: NOT_FOUND}, "sandbox",
            idempotent=False),
        "checkout_page": Operation("The hosted payment page (payment_url)", {
            200: Body("the page", media="text/html"), 403: Body("unknown payment or wrong token", media="text/html")},
            hosted=True),
        "checkout_submit": Operation("Submit the hosted payment page (card form or cancel)", {
            200: Body("the result page", media="text/html"),
            302: Body("to return_url or the configured redirect URL", media="text/html"),
            400: Body("the form again with the error", media="text/html"),
            403: Body("unknown payment or wrong token", media="text/html")}, hosted=True),
        "challenge_page": Operation("The 3-D Secure page (redirect_url)", {
            200: Body("the page", media="text/html"), 403: Body("unknown payment or wrong token", media="text/html")},
            hosted=True),
        "challenge_submit": Operation("Submit the 3-D Secure page", {
            200: Body("the result page", media="text/html"),
            302: Body("to return_url or the configured redirect URL", media="text/html"),
            400: Body("unknown action or a refusal", media="text/html"),
            403: Body("unknown payment or wrong token", media="text/html")}, hosted=True),
    },
    webhooks={event: (f"{event}: a flat payload, no envelope", Webhook) for event in EVENTS},
    webhook_headers={"X-Zafapay-Signature-Sandbox": "hex HMAC-SHA256 of the body with the webhook secret "
                                                    "(X-Zafapay-Signature when signature_header is production "
                                                    "or both)"},
)
