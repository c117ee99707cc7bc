"""Paysera Checkout's simulated surface as data for the OpenAPI document: the request schemas the
views load, and response schemas mirroring ``views.py`` (payment requests, notifications) and the
error envelope."""
from __future__ import annotations

from marshmallow import Schema, fields

from ..openapi import BUSY, Body, Contract, Operation
from . import schemas as req
from .views import AUTHORIZED, CANCELED, CAPTURED, CHECKOUT_TOKEN_ISSUED
from .routes import PR_STATUSES


def S(**kw):
    return fields.String(required=kw.pop("required", True), **kw)


def I(**kw):
    return fields.Integer(required=kw.pop("required", True), **kw)


class ErrorItem(Schema):
    code = S()
    message = S()
    field = S()


class Error(Schema):
    error = S(metadata={"enum": ["invalid_request", "invalid_parameters", "invalid_state", "invalid_cursor",
                                 "unauthorized", "forbidden", "not_found", "payment_request_not_unique",
                                 "internal_server_error"]})
    error_description = S()
    error_properties = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                                   metadata={"description": "invalid_parameters: messages per field"})
    errors = fields.List(fields.Nested(ErrorItem))
    error_data = fields.Dict(metadata={"description": "a decline: reason and reason_description"})


class Money(Schema):
    amount = fields.Raw(required=True, metadata={
        "type": ["string", "integer"],
        "description": "in the form the request used: a decimal string in major units or an integer in minor units"})
    currency = S()


class PayerView(Schema):
    email = S()
    name = S(required=False)
    surname = S(required=False)
    full_name = S(required=False)
    personal_code = S(required=False)
    ip = S(required=False)
    ip_country = S(required=False)
    account = S(required=False)
    account_number = S(required=False)


class PaymentRequest(Schema):
    id = S()
    status = S(metadata={"enum": list(PR_STATUSES)})
    business_id = S()
    order_id = S()
    unique_identifier = S(required=False)
    price = fields.Nested(Money, required=True)
    price_paid = fields.Nested(Money)
    valid_until = I(required=False)
    locale = S()
    description = S()
    method_country = S(required=False)
    method_key = S()
    payer = fields.Nested(PayerView, required=True)
    information_request = fields.Dict()
    card_data_restriction = fields.Dict()
    accept_url = S(required=False)
    cancel_url = S(required=False)
    callback_url = S()
    authorization_url = S(metadata={"description": "the hosted payment page"})
    affiliate_key = S(required=False)
    parameters = fields.Dict()
    token_strategy = S(required=False)
    issued_token = S(required=False, metadata={"description": "the card token, once issued"})
    created_at = I()
    captured_at = I(required=False)
    canceled_at = I(required=False)


class Cursors(Schema):
    after = S()
    before = S()


class ListMetadata(Schema):
    total = I()
    offset = I()
    limit = I()
    order_by = S()
    order_direction = S(metadata={"enum": ["asc", "desc"]})
    has_next = fields.Boolean(required=True)
    has_previous = fields.Boolean(required=True)
    cursors = fields.Nested(Cursors)


class PaymentRequestList(Schema):
    items = fields.List(fields.Nested(PaymentRequest), required=True)
    metadata = fields.Nested(ListMetadata, required=True, data_key="_metadata")


class PublicInfo(Schema):
    status = S(metadata={"enum": list(PR_STATUSES)})
    price = fields.Nested(Money, required=True)
    description = S()
    payer_email_present = fields.Boolean(required=True)


class NotificationData(Schema):
    payment_request = fields.Nested(PaymentRequest, required=True)


EVENTS = [CAPTURED, AUTHORIZED, CANCELED, CHECKOUT_TOKEN_ISSUED]


class Notification(Schema):
    id = S()
    event = S(metadata={"enum": EVENTS})
    status = S(metadata={"enum": ["new", "read"]})
    created_at = I()
    data = fields.Nested(NotificationData, required=True)


class NotificationList(Schema):
    items = fields.List(fields.Nested(Notification), required=True)
    metadata = fields.Nested(ListMetadata, required=True, data_key="_metadata")


class Callback(Schema):
    notification_id = S(required=False, metadata={"description": "also in the callback URL's query"})


class ListQuery(Schema):
    limit = fields.Integer(metadata={"minimum": 1, "maximum": 200})
    offset = fields.Integer(metadata={"minimum": 0})
    order_by = fields.String()
    order_direction = fields.String(metadata={"enum": ["asc", "desc"]})
    after = fields.String()
    before = fields.String()


class PaymentRequestQuery(ListQuery):
    status = fields.String(metadata={"enum": list(PR_STATUSES)})
    business_id = fields.String()
    method_key = fields.String()


class NotificationQuery(ListQuery):
    status = fields.String(metadata={"enum": ["new", "read"]})


INVALID = Body("invalid_parameters (error_properties per field), invalid_request or invalid_cursor", Error)
NOT_FOUND = Body("unknown id (or another MAC id's)", Error)
STATE = Body("invalid_state (incl. a decline, with error_data) or payment_request_not_unique", Error)
PAYMENT_REQUEST = Body("the payment request", PaymentRequest)


def then(*operations: str, source: str = "$response.body#/id", name: str = "pr_id") -> dict:
    return {f"Then{op}": {"operationId": op, "parameters": {name: source}} for op in operations}


CONTRACT = Contract(
    title="Paysera Checkout (PSP Sandbox)",
    version="1.0",
    description="The subset of Paysera's Checkout REST API and Notification Event API the sandbox simulates: "
                "payment requests with the hosted payment page, card tokens and token charges, captures and "
                "cancellations, and notifications (re-sent to callback_url until marked read).",
    security_schemes={"MAC": {"type": "apiKey", "in": "header", "name": "Authorization",
                              "description": 'MAC id="...", ts="...", nonce="...", mac="...", ext="body_hash=..."'
                                             ": base64 HMAC-SHA256, with the MAC key, of ts, nonce, method, "
                                             "request URI, host, port and ext, one per line; ext carries the "
                                             "base64 SHA-256 of the body; ts within 5 minutes, a nonce used once"}},
    unavailable=Body(BUSY, Error),
    common={401: Body("missing or bad MAC", Error), 413: Body("body larger than 1 MiB", Error)},
    field_types={req.Amount: (["string", "integer"], None), req.StrictBoolean: ("boolean", None)},
    operations={
        "create_payment_request": Operation("Create a payment request", {
            200: Body("the payment request; send the customer to authorization_url", PaymentRequest,
                      links=then("get_payment_request", "capture", "cancel")),
            400: INVALID, 409: STATE}, request=req.PaymentRequestCreate, tags=("payment requests",),
            example={"business_id": "LcKB4rs-pNVLgQKxZTaGzfZRAuiQPuyE", "order_id": "SUB_1_MONTH_1",
                     "price": {"amount": "9.99", "currency": "EUR"}, "locale": "en",
                     "description": "Monthly subscription", "method_key": "card",
                     "payer": {"email": "customer@example.com"}, "callback_url": "http://127.0.0.1:9/cb",
                     "token_strategy": "required"}),
        "list_payment_requests": Operation("List payment requests", {
            200: Body("a page", PaymentRequestList), 400: INVALID}, query=PaymentRequestQuery,
            tags=("payment requests",)),
        "get_payment_request": Operation("Get a payment request", {200: PAYMENT_REQUEST, 404: NOT_FOUND},
                                         tags=("payment requests",)),
        "authorize": Operation("Charge a card token (a merchant-initiated payment)", {
            200: PAYMENT_REQUEST, 400: INVALID, 404: NOT_FOUND, 409: STATE}, request=req.Authorize,
            tags=("payment requests",)),
        "capture": Operation("Capture an authorized payment request", {
            200: PAYMENT_REQUEST, 400: INVALID, 404: NOT_FOUND, 409: STATE}, request=req.Capture,
            tags=("payment requests",), example={}),
        "cancel": Operation("Cancel a payment request", {200: PAYMENT_REQUEST, 404: NOT_FOUND, 409: STATE},
                            tags=("payment requests",)),
        "public_info": Operation("What the payment page shows of a payment request", {
            200: Body("status, price, description", PublicInfo), 404: NOT_FOUND}, tags=("payment requests",)),
        "list_notifications": Operation("List notifications", {
            200: Body("a page", NotificationList), 400: INVALID}, query=NotificationQuery, tags=("notifications",)),
        "get_notification": Operation("Get a notification (event and payment request)", {
            200: Body("the notification", Notification), 404: NOT_FOUND}, tags=("notifications",)),
        "read_notification": Operation("Mark a notification read (stops the re-sending)", {
            200: Body("the notification", Notification), 404: NOT_FOUND}, tags=("notifications",)),
        "pay_page": Operation("The hosted payment page (authorization_url)", {
            200: Body("the page", media="text/html"), 404: Body("unknown payment request", media="text/html")},
            hosted=True),
        "pay_submit": Operation("Submit the hosted payment page (card form or cancel)", {
            200: Body("result page, or the form again with errors or a decline", media="text/html"),
            303: Body("back to accept_url / cancel_url", media="text/html"),
            404: Body("unknown payment request", media="text/html"),
            409: Body("the payment request is not new", media="text/html")}, hosted=True),
    },
    webhooks={event: (f"callback for a {event} notification: fetch it with GET "
                      f"/notification/rest/v1/notifications/{{id}}, then mark it read", Callback)
              for event in EVENTS},
)
