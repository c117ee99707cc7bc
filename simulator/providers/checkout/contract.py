"""Checkout.com's simulated surface as data for the OpenAPI document: the request schemas the views
load, and response schemas mirroring ``views.py``."""
from __future__ import annotations

from marshmallow import Schema, fields

from ..openapi import BUSY, Body, Contract, Operation
from . import schemas as req
from .machine import PAYMENT
from .testcards import SUCCESS_CARD

# every status the transition table can reach ("Requested" lives only while a payment is created)
STATUSES = sorted(set(PAYMENT.edges.values()))


def Str(**kw):
    return fields.String(required=kw.pop("required", True), **kw)


def Int(**kw):
    return fields.Integer(required=kw.pop("required", True), **kw)


def Bool(**kw):
    return fields.Boolean(required=kw.pop("required", True), **kw)


class Link(Schema):
    href = Str()


def links(**kw):
    return fields.Dict(keys=fields.String(), values=fields.Nested(Link), data_key="_links", **kw)


class ErrorResponse(Schema):
    request_id = Str()
    error_type = Str(metadata={"enum": ["request_invalid", "request_malformed", "processing_error",
                                        "service_unavailable", "internal_error"]})
    error_codes = fields.List(fields.String(), required=True)


class PhoneNumber(Schema):
    country_code = Str(required=False)
    number = Str(required=False)


class BillingAddress(Schema):
    address_line1 = Str(required=False)
    address_line2 = Str(required=False)
    city = Str(required=False)
    state = Str(required=False)
    zip = Str(required=False)
    country = Str(required=False)


class CardDetails(Schema):
    """The card fields shown in a payment's ``source``, a token and an instrument."""
    expiry_month = Int()
    expiry_year = Int()
    name = Str(required=False)
    scheme = Str(metadata={"description": "as the guide's payment writes it (Visa, Mastercard, Amex)"})
    last4 = Str()
    bin = Str(metadata={"description": "the first 6 digits"})
    card_type = Str()
    card_category = Str()
    issuer = Str()
    issuer_country = Str()
    product_id = Str()
    product_type = Str()
    billing_address = fields.Nested(BillingAddress)
    phone = fields.Nested(PhoneNumber)


class CardSource(CardDetails):
    id = Str(required=False, metadata={"description": "the stored instrument (src_), once approved"})
    type = Str(metadata={"enum": ["card"]})
    fingerprint = Str()
    avs_check = Str()
    cvv_check = Str()
    payment_account_reference = Str()


class WebhookCardSource(CardSource):
    last_4 = Str()

    class Meta:
        exclude = ("last4",)   # webhooks spell it last_4


class ThreeDSResult(Schema):
    downgraded = Bool()
    enrolled = Str()
    authentication_response = Str(required=False)
    challenged = Bool(required=False)
    signature_valid = Str(required=False)
    version = Str(required=False)
    upgrade_reason = Str(required=False)
    cryptogram = Str(required=False)
    xid = Str(required=False)
    authentication_id = Str(required=False)


class PaymentCustomer(Schema):
    id = Str()
    email = Str(required=False)
    name = Str(required=False)


class Balances(Schema):
    total_authorized = Int()
    total_voided = Int()
    available_to_void = Int()
    total_captured = Int()
    available_to_capture = Int()
    total_refunded = Int()
    available_to_refund = Int()


class Risk(Schema):
    flagged = Bool()


class RetryStatus(Schema):
    max_attempts = Int()
    attempts_made = Int()
    ends_on = Str()
    next_attempt_on = Str(required=False)


class Processing(Schema):
    retrieval_reference_number = Str(required=False)
    acquirer_transaction_id = Str(required=False)
    acquirer_reference_number = Str(required=False)


def status_field():
    return Str(metadata={"enum": list(STATUSES)})


class PaymentPending(Schema):
    id = Str()
    status = Str(metadata={"enum": ["Pending"]})
    reference = Str(required=False)
    customer = fields.Nested(PaymentCustomer)
    three_ds = fields.Nested(ThreeDSResult, data_key="3ds", required=True)
    links = links(required=True)


class PaymentProcessed(Schema):
    id = Str()
    action_id = Str()
    amount = Int()
    currency = Str()
    approved = Bool()
    status = status_field()
    auth_code = Str()
    response_code = Str()
    response_summary = Str()
    retry = fields.Nested(RetryStatus)
    expires_on = Str(required=False)
    balances = fields.Nested(Balances, required=True)
    risk = fields.Nested(Risk, required=True)
    three_ds = fields.Nested(ThreeDSResult, data_key="3ds")
    source = fields.Nested(CardSource, required=True)
    customer = fields.Nested(PaymentCustomer)
    processed_on = Str()
    reference = Str(required=False)
    scheme_id = Str(required=False)
    eci = Str(required=False)
    processing = fields.Nested(Processing, required=True)
    links = links(required=True)


class ActionSummary(Schema):
    id = Str()
    type = Str()
    response_code = Str(allow_none=True)
    response_summary = Str(allow_none=True)


class PaymentDetails(Schema):
    id = Str()
    requested_on = Str()
    source = fields.Nested(CardSource, required=True)
    amount = Int()
    currency = Str()
    payment_type = Str()
    merchant_initiated = Bool()
    reference = Str(required=False)
    description = Str(required=False)
    previous_payment_id = Str(required=False)
    approved = Bool(required=False)
    expires_on = Str(required=False)
    status = status_field()
    retry = fields.Nested(RetryStatus)
    balances = fields.Nested(Balances, required=True)
    three_ds = fields.Nested(ThreeDSResult, data_key="3ds")
    risk = fields.Nested(Risk, required=True)
    customer = fields.Nested(PaymentCustomer)
    billing_descriptor = fields.Nested(req.BillingDescriptorSchema)   # as the request gave it
    metadata = fields.Dict(required=True)
    eci = Str(required=False)
    scheme_id = Str(required=False)
    processing = fields.Nested(Processing)
    response_code = Str(required=False)
    response_summary = Str(required=False)
    actions = fields.List(fields.Nested(ActionSummary), metadata={"description": "only when fetched by session id"})
    links = links(required=True)


class PaymentList(Schema):
    limit = Int()
    skip = Int()
    total_count = Int()
    data = fields.List(fields.Nested(PaymentDetails), required=True)


class PaymentAction(Schema):
    id = Str()
    type = Str(metadata={"enum": ["Authorization", "Card Verification", "Capture", "Refund", "Void"]})
    processed_on = Str()
    amount = Int()
    approved = Bool()
    auth_code = Str(required=False)
    response_code = Str()
    response_summary = Str()
    reference = Str(required=True, allow_none=True)
    processing = fields.Nested(Processing, required=True)
    metadata = fields.Dict(required=True)


class ActionAccepted(Schema):
    action_id = Str()
    reference = Str(required=True, allow_none=True)
    links = links(required=True)


class CardToken(CardDetails):
    type = Str(metadata={"enum": ["card"]})
    token = Str()
    expires_on = Str()


class CustomerCreated(Schema):
    id = Str()


class InstrumentOwner(Schema):
    id = Str()
    email = Str()
    name = Str(required=False)
    default = Bool()


class Instrument(CardDetails):
    id = Str()
    type = Str(metadata={"enum": ["card"]})
    fingerprint = Str()
    account_holder = fields.Dict()
    customer = fields.Nested(InstrumentOwner)

    class Meta:
        exclude = ("billing_address", "phone")


class CustomerDetails(Schema):
    id = Str()
    email = Str()
    name = Str(required=False)
    phone = fields.Nested(PhoneNumber)
    metadata = fields.Dict(required=True)
    default = Str(required=False)
    instruments = fields.List(fields.Nested(Instrument), required=True)


class InstrumentUpdated(Schema):
    type = Str(metadata={"enum": ["card"]})
    fingerprint = Str()


class PaymentsQuery(Schema):
    limit = fields.Integer(metadata={"minimum": 1, "maximum": 100})
    skip = fields.Integer(metadata={"minimum": 0})
    reference = fields.String()


class EventData(Schema):
    id = Str()
    action_id = Str(allow_none=True)
    reference = Str(required=True, allow_none=True)
    amount = Int()
    currency = Str()
    payment_type = Str()
    processed_on = Str()
    auth_code = Str(required=False)
    response_code = Str(required=False)
    response_summary = Str(required=False)
    retry = fields.Nested(RetryStatus)
    risk = fields.Nested(Risk, required=True)
    three_ds = fields.Nested(ThreeDSResult, data_key="3ds")
    scheme_id = Str(required=False)
    source = fields.Nested(WebhookCardSource, required=True)
    customer = fields.Nested(PaymentCustomer)
    metadata = fields.Dict(required=True)
    balances = fields.Nested(Balances, required=True)
    processing = fields.Nested(Processing)
    event_links = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class Event(Schema):
    id = Str()
    type = Str()
    version = Str()
    created_on = Str()
    data = fields.Nested(EventData, required=True)
    links = links(required=True)


REQUEST_ID = {"Cko-Request-Id": "the request's id, also on bodiless errors"}
EMPTY = "no body"
ERROR = Body("request_invalid (field error codes) or request_malformed (JSON)", ErrorResponse)
NOT_FOUND = Body("unknown id (or another key's object); " + EMPTY, headers=REQUEST_ID)
FORBIDDEN = Body("the payment's state does not allow it; " + EMPTY, headers=REQUEST_ID)
IN_FLIGHT = Body("a request with the same Cko-Idempotency-Key is still being processed", ErrorResponse)
IDEMPOTENCY = {"Cko-Idempotency-Key": "the first processed answer is replayed for the same key"}


def follow_up(summary, request_schema, example, *then: str) -> Operation:
    """A capture, refund, void or retry cancellation: 202 with the action id."""
    after = {"GetPayment": "get_payment", "GetActions": "get_actions", **{f"Then{op}": op for op in then}}
    return Operation(summary, {
        202: Body("accepted; the action is processed at once", ActionAccepted,
                  links={name: {"operationId": op, "parameters": {"payment_id": "$request.path.payment_id"}}
                         for name, op in after.items()}),
        403: FORBIDDEN, 404: NOT_FOUND, 422: ERROR, 429: IN_FLIGHT}, request=request_schema, headers=IDEMPOTENCY,
        tags=("payments",), example=example)


CARD = {"type": "card", "number": SUCCESS_CARD, "expiry_month": 12, "expiry_year": 2030, "cvv": "100"}
def links_to(parameter: str, *operations: str) -> dict:
    """Links from a create answer to the operations on what it created, in a sensible order."""
    return {f"Then{op}": {"operationId": op, "parameters": {parameter: "$response.body#/id"}} for op in operations}


_PAYMENT_LINKS = {name: {"operationId": op, "parameters": {"payment_id": "$response.body#/id"}}
                  for name, op in (("GetPayment", "get_payment"), ("GetActions", "get_actions"),
                                   ("Capture", "capture_payment"), ("Refund", "refund_payment"),
                                   ("Void", "void_payment"))}

CONTRACT = Contract(
    title="Checkout.com (PSP Sandbox)",
    version="3.31.4",
    description="The subset of Checkout.com's Unified Payments API the sandbox simulates: payments "
                "with 3DS and scheduled retries, captures, refunds, voids, card tokens, customers and "
                "instruments. 401, 403 and 404 carry no body (as on Checkout.com); every response has "
                "a Cko-Request-Id header.",
    security_schemes={"SecretKey": {"type": "http", "scheme": "bearer",
                                    "description": "sk_sbox_... (NAS) or sk_test_<uuid> (ABC); sent as "
                                                   "'Bearer <key>' or bare"},
                      },
    unavailable=Body(BUSY, ErrorResponse),
    common={401: Body("missing or unknown key; " + EMPTY, headers=REQUEST_ID),
            413: Body("body larger than 1 MiB", ErrorResponse),
            422: ERROR},
    field_types={req.Source: ("object", None), req.CardNumber: ("string", None), req.Metadata: ("object", None)},
    operations={
        "request_payment": Operation("Request a payment or payout", {
            201: Body("processed (authorized, captured, declined or retry scheduled)", PaymentProcessed,
                      links=_PAYMENT_LINKS),
            202: Body("the customer must authenticate: follow _links.redirect", PaymentPending,
                      links={k: v for k, v in _PAYMENT_LINKS.items() if k == "GetPayment"}),
            403: FORBIDDEN, 404: NOT_FOUND, 422: ERROR, 429: IN_FLIGHT},
            request=req.PaymentRequestSchema, headers=IDEMPOTENCY, tags=("payments",),
            example={"source": CARD, "amount": 1000, "currency": "GBP", "capture": False, "reference": "ORD-1",
                     "payment_type": "Recurring", "customer": {"email": "jane@example.com"}}),
        "list_payments": Operation("Get payment lists (newest first)", {200: Body("a page", PaymentList)},
                                   query=PaymentsQuery, tags=("payments",)),
        "get_payment": Operation("Get payment details (by pay_ or 3DS session sid_ id)", {
            200: Body("the payment", PaymentDetails), 404: NOT_FOUND}, tags=("payments",)),
        "get_actions": Operation("Get payment actions (newest first)", {
            200: Body("the actions", fields.List(fields.Nested(PaymentAction))), 404: NOT_FOUND}, tags=("payments",)),
        "capture_payment": follow_up("Capture a payment", req.CaptureRequestSchema, {"reference": "cap-1"},
                                     "refund_payment"),
        "refund_payment": follow_up("Refund a payment", req.RefundRequestSchema, {"amount": 300, "reference": "ref-1"}),
        "void_payment": follow_up("Void a payment", req.VoidRequestSchema, {"reference": "void-1"}),
        "cancel_scheduled_retry": follow_up("Cancel a payment's scheduled retry", req.VoidRequestSchema, {}),
        "request_card_token": Operation(
            "Request a card token (with the public key)", {201: Body("the token", CardToken), 403: FORBIDDEN},
            request=req.TokenRequestSchema, tags=("tokens",), example={**CARD, "cvv": "100", "name": "Jane Doe"},
            description="Authenticated with the public key (pk_...), not the secret key."),
        "create_customer": Operation("Create a customer", {201: Body("created", CustomerCreated, links=links_to(
            "customer_id", "get_customer", "update_customer", "delete_customer"))},
                                     request=req.CustomerCreateSchema, tags=("customers",),
                                     example={"email": "jane@example.com", "name": "Jane Doe"}),
        "get_customer": Operation("Get customer details (by id or email)", {
            200: Body("the customer", CustomerDetails), 404: NOT_FOUND}, tags=("customers",)),
        "update_customer": Operation("Update customer details", {204: Body("updated"), 404: NOT_FOUND},
                                     request=req.CustomerUpdateSchema, tags=("customers",),
                                     example={"name": "Jane Q. Doe"}),
        "delete_customer": Operation("Delete a customer", {204: Body("deleted"), 404: NOT_FOUND},
                                     tags=("customers",)),
        "create_instrument": Operation("Create an instrument", {
            201: Body("created", Instrument, links=links_to("instrument_id", "get_instrument", "update_instrument",
                                                            "revoke_instrument", "delete_instrument")),
            403: FORBIDDEN, 404: NOT_FOUND},
            request=req.InstrumentCreateSchema, tags=("instruments",),
            example={k: v for k, v in CARD.items() if k != "cvv"}),
        "get_instrument": Operation("Get instrument details", {
            200: Body("the instrument", Instrument), 404: NOT_FOUND}, tags=("instruments",)),
        "update_instrument": Operation("Update an instrument", {
            200: Body("updated", InstrumentUpdated), 404: NOT_FOUND},
            request=req.InstrumentUpdateSchema, tags=("instruments",), example={"expiry_year": 2031}),
        "revoke_instrument": Operation("Revoke an instrument (it stops working)", {
            204: Body("revoked"), 404: NOT_FOUND}, tags=("instruments",)),
        "delete_instrument": Operation("Delete an instrument", {204: Body("deleted"), 404: NOT_FOUND},
                                       tags=("instruments",)),
        "challenge_page": Operation("The issuer's 3DS challenge page (the customer's browser)", {
            200: Body("the page", media="text/html"), 404: Body("unknown session", media="text/plain")},
            hosted=True),
        "challenge_submit": Operation("Submit the 3DS challenge (password or cancel)", {
            200: Body("done, no return URL", media="text/html"), 302: Body("back to success_url / failure_url", media="text/html"),
            404: Body("unknown session", media="text/plain"), 409: Body("not waiting for authentication",
                                                                         media="text/html")},
            hosted=True),
    },
    webhooks={event: (summary, Event) for event, summary in (
        ("payment_approved", "the authorization was approved"),
        ("payment_pending", "the customer must authenticate"),
        ("payment_declined", "the authorization was declined"),
        ("payment_authentication_failed", "3DS failed or timed out"),
        ("payment_captured", "a capture succeeded"),
        ("payment_refunded", "a refund succeeded"),
        ("payment_voided", "the authorization was voided"),
        ("payment_expired", "the authorization expired"),
        ("payment_retry_scheduled", "a declined payment will be retried"),
        ("payment_canceled", "a scheduled retry was cancelled"),
        ("card_verified", "a zero-amount verification succeeded"),
        ("card_verification_declined", "a zero-amount verification was declined"),
    )},
    webhook_headers={"Cko-Signature": "HMAC-SHA256 (hex) of the raw body with the webhook signing key"},
)
