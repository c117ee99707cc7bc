"""Gr4vy's simulated surface as data for the OpenAPI document: the request schemas the views load,
and response schemas mirroring ``views.py`` (the published document's shapes:
Transaction, TransactionSummary, Refund, PaymentMethod, PaymentMethodSummary, Buyer)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..openapi import BUSY, Body, Contract, Operation
from . import schemas as req
from .machine import EVENT_NAMES, TRANSACTION


def S(**kw):
    return fields.String(required=True, **kw)


def SN(**kw):
    """Always present, may be null."""
    return fields.String(required=True, allow_none=True, **kw)


def I(**kw):
    return fields.Integer(required=True, **kw)


def B(**kw):
    return fields.Boolean(required=True, **kw)


def const(value):
    return S(metadata={"enum": [value]})


class ErrorDetail(Schema):
    location = S()
    pointer = S()
    message = S()
    type = S()


class Error(Schema):
    type = const("error")
    code = S()
    status = I()
    message = S()
    details = fields.List(fields.Nested(ErrorDetail), required=True)
    resource_id = fields.String(metadata={"description": "409 duplicate_record: the existing record"})


class CardDetails(Schema):
    bin = S()
    card_type = S()
    card_issuer_name = SN()


class TransactionPaymentMethod(Schema):
    type = const("payment-method")
    method = S()
    mode = S()
    id = SN()
    scheme = S()
    label = S()
    expiration_date = S()
    details = fields.Nested(CardDetails, required=True)
    fingerprint = S()
    approval_url = SN()
    approval_target = SN()
    country = SN()
    currency = SN()
    external_identifier = SN()


class TransactionBuyer(Schema):
    type = const("buyer")
    id = SN()
    display_name = SN()
    external_identifier = SN()
    billing_details = fields.Nested(req.BillingDetails, required=True, allow_none=True)
    account_number = SN()


class TransactionPaymentService(Schema):
    type = const("payment-service")
    id = S(metadata={"format": "uuid"})
    payment_service_definition_id = S()
    method = S()
    display_name = S()


STATUSES = sorted(TRANSACTION.states)


class TransactionSummary(Schema):
    type = const("transaction")
    id = S(metadata={"format": "uuid"})
    reconciliation_id = S()
    merchant_account_id = S()
    currency = S()
    amount = I()
    status = S(metadata={"enum": STATUSES})
    authorized_amount = I()
    captured_amount = I()
    refunded_amount = I()
    settled_currency = SN()
    settled_amount = I()
    settled = B()
    country = SN()
    external_identifier = SN()
    intent = S(metadata={"enum": ["authorize", "capture"]})
    payment_method = fields.Nested(TransactionPaymentMethod, required=True, allow_none=True)
    method = SN()
    instrument_type = SN()
    error_code = SN()
    payment_service = fields.Nested(TransactionPaymentService, required=True, allow_none=True)
    pending_review = B()
    buyer = fields.Nested(TransactionBuyer, required=True, allow_none=True)
    raw_response_code = SN()
    raw_response_description = SN()
    gift_card_redemptions = fields.List(fields.Dict(), required=True)
    created_at = S()
    updated_at = S()
    disputed = B()


class Transaction(TransactionSummary):
    intent_outcome = S(metadata={"enum": ["pending", "succeeded", "failed"]})
    multi_tender = B()
    account_funding_transaction = B()
    payment_source = S()
    merchant_initiated = B()
    is_subsequent_payment = B()
    metadata = fields.Dict(keys=fields.String(), values=fields.String(), required=True, allow_none=True)
    statement_descriptor = fields.Nested(req.StatementDescriptor, required=True, allow_none=True)
    cart_items = fields.List(fields.Nested(req.CartItem), required=True, allow_none=True)
    auth_response_code = SN()
    avs_response_code = SN()
    cvv_response_code = SN()
    scheme_transaction_id = SN()
    payment_service_transaction_id = SN()
    authorized_at = SN()
    captured_at = SN()
    voided_at = SN()
    canceled_at = SN()
    approval_expires_at = SN()


class TransactionCaptureResult(Schema):
    type = const("transaction-capture")
    status = S(metadata={"enum": ["succeeded", "declined", "failed"]})
    code = SN()
    raw_response_code = SN()
    raw_response_description = SN()
    capture_id = SN()
    payment_service_capture_id = SN()
    transaction = fields.Nested(Transaction, required=True)


class TransactionVoidResult(Schema):
    type = const("transaction-void")
    status = S(metadata={"enum": ["succeeded", "declined", "failed"]})
    code = SN()
    raw_response_code = SN()
    raw_response_description = SN()
    transaction = fields.Nested(Transaction, required=True)


class Refund(Schema):
    type = const("refund")
    id = S(metadata={"format": "uuid"})
    transaction_id = S()
    payment_service_refund_id = SN()
    status = S(metadata={"enum": ["processing", "succeeded", "declined", "failed", "voided"]})
    currency = S()
    amount = I()
    reason = SN()
    target_type = S()
    target_id = SN()
    reconciliation_id = S()
    transaction_reconciliation_id = S()
    external_identifier = SN()
    transaction_external_identifier = SN()
    error_code = SN()
    raw_response_code = SN()
    raw_response_description = SN()
    settled = B()
    settled_amount = I()
    created_at = S()
    updated_at = S()


class Buyer(Schema):
    type = const("buyer")
    id = S(metadata={"format": "uuid"})
    reconciliation_id = S()
    merchant_account_id = S()
    display_name = SN()
    external_identifier = SN()
    billing_details = fields.Nested(req.BillingDetails, required=True, allow_none=True)
    account_number = SN()
    created_at = S()
    updated_at = S()


class PaymentMethodSummary(Schema):
    type = const("payment-method")
    id = S(metadata={"format": "uuid"})
    merchant_account_id = S()
    method = S()
    mode = S()
    scheme = S()
    label = S()
    expiration_date = S()
    details = fields.Nested(CardDetails, required=True)
    fingerprint = S()
    approval_url = SN()
    country = SN()
    currency = SN()
    cit_usage_count = I()
    usage_count = I()
    has_replacement = B()
    scheme_transaction_id = SN()
    scheme_transaction_id_scheme = SN()
    last_used_at = SN()
    cit_last_used_at = SN()


class PaymentMethod(PaymentMethodSummary):
    status = S(metadata={"enum": ["succeeded", "failed"]})
    external_identifier = SN()
    buyer = fields.Nested(Buyer, required=True, allow_none=True)
    created_at = S()
    updated_at = S()


def page_of(item, name):
    return type(name, (Schema,), {
        "items": fields.List(fields.Nested(item), required=True),
        "limit": I(),
        "next_cursor": SN(),
        "previous_cursor": SN(),
    })


class Items(Schema):
    items = fields.List(fields.Nested(PaymentMethodSummary), required=True)


class Refunds(Schema):
    items = fields.List(fields.Nested(Refund), required=True)


class PageQuery(Schema):
    limit = fields.Integer(metadata={"minimum": 1, "maximum": 100})
    cursor = fields.String()


def Many(item=None):
    """A repeatable query parameter (``?status=a&status=b``), sent exploded as the SDK does."""
    return fields.List(item or fields.String())


class TransactionsQuery(PageQuery):
    search = fields.String(metadata={"description": "an exact id, external_identifier, buyer id, buyer "
                                                    "external_identifier or payment_service_transaction_id"})
    id = fields.UUID()
    buyer_id = fields.UUID()
    buyer_external_identifier = fields.String()
    buyer_email_address = fields.String()
    buyer_search = Many(fields.String(metadata={"description": "each one of the buyer's data, exactly"}))
    ip_address = fields.String()
    external_identifier = fields.String()
    reconciliation_id = fields.String()
    payment_service_transaction_id = fields.String()
    status = Many(fields.String(metadata={"enum": STATUSES}))
    currency = Many()
    country = Many()
    payment_source = Many()
    method = Many()
    error_code = Many()
    payment_service_id = Many(fields.UUID())
    payment_method_id = fields.UUID()
    payment_method_label = fields.String()
    payment_method_scheme = Many()
    payment_method_country = fields.String()
    payment_method_fingerprint = fields.String()
    payment_method_bin = fields.String()
    amount_eq = fields.Integer()
    amount_gte = fields.Integer()
    amount_lte = fields.Integer()
    merchant_initiated = fields.Boolean()
    is_subsequent_payment = fields.Boolean()
    has_refunds = fields.Boolean()
    pending_review = fields.Boolean()
    disputed = fields.Boolean()
    used_3ds = fields.Boolean()
    has_settlements = fields.Boolean()
    has_gift_card_redemptions = fields.Boolean()
    checkout_session_id = fields.UUID()
    payment_link_id = fields.UUID()
    gift_card_id = fields.UUID()
    gift_card_last4 = fields.String(validate=validate.Length(equal=4))
    reauthorized_from_transaction_id = fields.UUID()
    created_at_gte = fields.DateTime()
    created_at_lte = fields.DateTime()
    updated_at_gte = fields.DateTime()
    updated_at_lte = fields.DateTime()
    metadata = Many(fields.String(metadata={"description": "a JSON object of strings"}))


class PaymentMethodsQuery(PageQuery):
    buyer_id = fields.String()
    buyer_external_identifier = fields.String()
    external_identifier = fields.String()
    status = fields.String()


class BuyerPaymentMethodsQuery(Schema):
    buyer_id = fields.String()
    buyer_external_identifier = fields.String()
    sort_by = fields.String(metadata={"enum": ["last_used_at", "usage_count", "cit_last_used_at", "cit_usage_count"]})
    order_by = fields.String(metadata={"enum": ["asc", "desc"]})
    country = fields.String()
    currency = fields.String()


class BuyersQuery(PageQuery):
    search = fields.String()
    external_identifier = fields.String()


class Event(Schema):
    type = const("event")
    id = S(metadata={"format": "uuid"})
    name = S()
    created_at = S()
    merchant_account_id = S()
    gr4vy_id = S()
    environment = const("sandbox")
    target = fields.Dict(required=True, metadata={"description": "the transaction, refund, buyer or "
                                                                 "payment method, as the API returns it"})


INVALID = Body("validation failed or the object's state does not allow it", Error)
NOT_FOUND = Body("unknown id (or another merchant account's)", Error)
CONFLICT = Body("duplicate_record, or a request with the same idempotency-key still in flight", Error)
IDEMPOTENCY = {"idempotency-key": "1 to 255 characters; the first answer is replayed for 24 h"}
PREFER = {"prefer": "resource=transaction-capture / resource=transaction-void: answer with the wrapper"}
TX_ID = {"transaction_id": "$response.body#/id"}
_TX_LINKS = {"GetTransaction": {"operationId": "get_transaction", "parameters": TX_ID},
             "CaptureTransaction": {"operationId": "capture_transaction", "parameters": TX_ID},
             "VoidTransaction": {"operationId": "void_transaction", "parameters": TX_ID},
             "RefundTransaction": {"operationId": "create_refund", "parameters": TX_ID},
             "ListRefunds": {"operationId": "list_refunds", "parameters": TX_ID}}
_AFTER_ACTION = {"GetTransaction": {"operationId": "get_transaction",
                                    "parameters": {"transaction_id": "$request.path.transaction_id"}},
                 "RefundTransaction": {"operationId": "create_refund",
                                       "parameters": {"transaction_id": "$request.path.transaction_id"}}}


CARD = {"method": "card", "number": "4111111111111111", "expiration_date": "12/30"}


def op(summary, responses, tag, **kw):
    return Operation(summary, responses, tags=(tag,), **kw)


CONTRACT = Contract(
    title="Gr4vy (PSP Sandbox)",
    version="1.0",
    description="The subset of Gr4vy's API the sandbox simulates (the one the official SDKs speak): "
                "transactions through the card simulator, captures, voids, refunds, vaulted payment "
                "methods and buyers. Errors are Gr4vy's error object.",
    security_schemes={"BearerJWT": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                    "description": "ES512 JWT signed with a P-521 key whose RFC 7638 thumbprint is "
                                                   "the kid; scopes such as transactions.read / *.write; the "
                                                   "x-gr4vy-merchant-account-id header picks the merchant account"}},
    unavailable=Body(BUSY, Error),
    common={401: Body("no valid JWT", Error), 403: Body("the JWT lacks the scope", Error),
            413: Body("body larger than 1 MiB", Error)},
    field_types={req._PaymentMethodField: ("object", None)},
    operations={
        "create_transaction": op("Create a transaction", {
            201: Body("the transaction (also when declined or failed)", Transaction, links=_TX_LINKS),
            400: INVALID, 409: CONFLICT}, "transactions", request=req.TransactionCreate, headers=IDEMPOTENCY,
            example={"amount": 1299, "currency": "GBP", "country": "GB", "intent": "authorize", "store": True,
                     "payment_method": {**CARD, "security_code": "123"}, "external_identifier": "order-1"}),
        "get_transaction": op("Get a transaction", {200: Body("the transaction", Transaction),
                                                     404: NOT_FOUND}, "transactions"),
        "list_transactions": op("List transactions (newest first)", {
            200: Body("a page of summaries", page_of(TransactionSummary, "TransactionSummaries")),
            400: INVALID}, "transactions", query=TransactionsQuery),
        "capture_transaction": op("Capture an authorized transaction", {
            200: Body("the transaction, or the capture wrapper when preferred", (Transaction, TransactionCaptureResult),
                      links=_AFTER_ACTION),
            400: INVALID, 404: NOT_FOUND, 409: CONFLICT}, "transactions", request=req.TransactionCapture,
            headers={**IDEMPOTENCY, **PREFER}, example={"amount": 1299}),
        "void_transaction": op("Void an authorized transaction", {
            200: Body("the transaction, or the void wrapper when preferred", (Transaction, TransactionVoidResult),
                      links={k: v for k, v in _AFTER_ACTION.items() if k == "GetTransaction"}),
            400: INVALID, 404: NOT_FOUND, 409: CONFLICT}, "transactions", headers={**IDEMPOTENCY, **PREFER}),
        "create_refund": op("Refund a captured transaction", {
            201: Body("the refund", Refund, links={"GetRefund": {"operationId": "get_refund",
                                                                 "parameters": {"refund_id": "$response.body#/id"}}}),
            400: INVALID, 404: NOT_FOUND, 409: CONFLICT}, "refunds", request=req.RefundCreate, headers=IDEMPOTENCY,
            example={"amount": 500, "reason": "damaged"}),
        "refund_all": op("Refund what is left of a transaction", {
            201: Body("the refunds made (none when nothing was left)", Refunds), 400: INVALID, 404: NOT_FOUND},
            "refunds", request=req.RefundCreate),
        "list_refunds": op("List a transaction's refunds", {
            200: Body("a page", page_of(Refund, "RefundPage")), 400: INVALID, 404: NOT_FOUND}, "refunds",
            query=PageQuery),
        "get_transaction_refund": op("Get a transaction's refund", {200: Body("the refund", Refund),
                                                                     404: NOT_FOUND}, "refunds"),
        "get_refund": op("Get a refund", {200: Body("the refund", Refund), 404: NOT_FOUND}, "refunds"),
        "create_payment_method": op("Vault a card", {
            201: Body("the payment method", PaymentMethod,
                      links={f"Then{op}": {"operationId": op, "parameters": {"payment_method_id": "$response.body#/id"}}
                             for op in ("get_payment_method", "delete_payment_method")}),
            400: INVALID}, "payment methods", request=req.PaymentMethodCreate,
            example={**CARD, "external_identifier": "card-1"}),
        "get_payment_method": op("Get a payment method", {200: Body("the payment method", PaymentMethod),
                                                           404: NOT_FOUND}, "payment methods"),
        "delete_payment_method": op("Delete a payment method", {204: Body("deleted"), 404: NOT_FOUND},
                                    "payment methods"),
        "list_payment_methods": op("List payment methods (newest first)", {
            200: Body("a page", page_of(PaymentMethod, "PaymentMethodPage")), 400: INVALID}, "payment methods",
            query=PaymentMethodsQuery),
        "list_buyer_payment_methods": op("List a buyer's usable payment methods", {
            200: Body("the summaries", Items), 400: INVALID, 404: NOT_FOUND}, "payment methods",
            query=BuyerPaymentMethodsQuery),
        "create_buyer": op("Create a buyer", {
            201: Body("the buyer", Buyer, links={f"Then{op}": {"operationId": op,
                                                               "parameters": {"buyer_id": "$response.body#/id"}}
                                                 for op in ("get_buyer", "update_buyer", "delete_buyer")}),
            400: INVALID, 409: CONFLICT}, "buyers", request=req.BuyerCreate,
            example={"display_name": "Jane Doe", "external_identifier": "jane-1",
                     "billing_details": {"email_address": "jane@example.com"}}),
        "get_buyer": op("Get a buyer", {200: Body("the buyer", Buyer), 404: NOT_FOUND}, "buyers"),
        "update_buyer": op("Update a buyer", {200: Body("the buyer", Buyer), 400: INVALID, 404: NOT_FOUND,
                                              409: CONFLICT}, "buyers", request=req.BuyerCreate,
                           example={"display_name": "Jane Q. Doe"}),
        "delete_buyer": op("Delete a buyer (and its payment methods)", {204: Body("deleted"), 404: NOT_FOUND},
                           "buyers"),
        "list_buyers": op("List buyers (newest first)", {
            200: Body("a page", page_of(Buyer, "BuyerPage")), 400: INVALID}, "buyers", query=BuyersQuery),
        "approval_page": Operation("The buyer's approval (3DS) page, reached through payment_method.approval_url", {
            200: Body("the page", media="text/html"), 404: Body("unknown transaction", Error)}, hosted=True),
        "approval_submit": Operation("Submit the approval page (outcome, three_ds)", {
            200: Body("done, no redirect_url", Transaction),
            302: Body("back to the redirect_url with gr4vy_transaction_id and gr4vy_transaction_status",
                      media="text/html"),
            400: Body("unknown outcome, or not waiting for approval", Error),
            404: Body("unknown transaction", Error)}, hosted=True),
    },
    webhooks={name: ("a transaction moved to " + status, Event) for status, name in EVENT_NAMES.items()} | {
        name: (summary, Event) for name, summary in (
            ("transaction.modified", "a transaction changed otherwise"),
            ("transaction.capture-failed", "a capture was declined or failed"),
            ("transaction.void-declined", "a void was declined"),
            ("transaction.void-failed", "a void failed"),
            ("refund.succeeded", "a refund succeeded"), ("refund.declined", "a refund was declined"),
            ("refund.failed", "a refund failed"),
            ("buyer.created", "a buyer was created"), ("buyer.updated", "a buyer was updated"),
            ("buyer.deleted", "a buyer was deleted"), ("payment-method.deleted", "a payment method was deleted"))},
    webhook_headers={"X-Gr4vy-Webhook-ID": "the event id",
                     "X-Gr4vy-Webhook-Timestamp": "Unix seconds",
                     "X-Gr4vy-Webhook-Signatures": "hex HMAC-SHA256 of '<timestamp>.<body>' with the webhook secret"},
)
