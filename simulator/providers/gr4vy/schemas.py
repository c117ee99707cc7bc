"""Request validation: a failure is ``Refusal("validation")`` whose pairs name the field by JSON
pointer; the error table turns them into a 400 ``bad_request`` with ``details``.
"""
from __future__ import annotations

import re

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from ..shape import Exact, Refusal, schema, walk

CURRENCY = re.compile(r"^[A-Z]{3}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
EXPIRY = re.compile(r"^(0[1-9]|1[0-2])/\d{2}$")
PAYMENT_SOURCES = ("ecommerce", "moto", "recurring", "installment", "card_on_file")
MAX_AMOUNT = 99_999_999
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
PRODUCT_TYPES = ("physical", "discount", "shipping_fee", "sales_tax", "digital", "gift_card", "store_credit",
                 "surcharge")


class StrictBool(fields.Boolean):
    """JSON true/false only: "yes" or 1 is a validation error, as in a typed API."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictInt(fields.Integer):
    def __init__(self, **kw):
        super().__init__(strict=True, **kw)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def Text(lo=1, hi=200, **kw):
    return fields.String(validate=validate.Length(min=lo, max=hi), **kw)


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE   # the SDK serialises many optional fields the sandbox does not model


class Address(_Base):
    city = Text(1, 100, allow_none=True)
    country = fields.String(validate=validate.Regexp(COUNTRY), allow_none=True)
    postal_code = Text(1, 50, allow_none=True)
    state = Text(1, 255, allow_none=True)
    state_code = Text(1, 255, allow_none=True)
    house_number_or_name = Text(1, 255, allow_none=True)
    line1 = Text(1, 255, allow_none=True)
    line2 = Text(1, 255, allow_none=True)
    organization = Text(1, 255, allow_none=True)


class TaxId(_Base):
    value = Text(1, 50, required=True)
    kind = Text(1, 50, required=True)


class BillingDetails(_Base):
    first_name = Text(1, 255, allow_none=True)
    last_name = Text(1, 255, allow_none=True)
    email_address = fields.Email(allow_none=True, validate=validate.Length(max=320))
    phone_number = fields.String(allow_none=True, validate=validate.Regexp(r"^\+[1-9]\d{1,14}$"))
    address = fields.Nested(Address, allow_none=True)
    tax_id = fields.Nested(TaxId, allow_none=True)


class GuestBuyer(_Base):
    display_name = Text(allow_none=True)
    external_identifier = Text(allow_none=True)
    billing_details = fields.Nested(BillingDetails, allow_none=True)
    account_number = Text(1, 64, allow_none=True)


class BuyerCreate(GuestBuyer):
    pass


class CardPaymentMethod(_Base):
    method = fields.String(required=True)
    number = fields.String(required=True, validate=validate.Regexp(r"^\d{13,19}$", error="Must be 13 to 19 digits."))
    expiration_date = fields.String(required=True, validate=validate.Regexp(EXPIRY, error="Must be MM/YY."))
    security_code = fields.String(allow_none=True, validate=validate.Regexp(r"^\d{3,4}$", error="Must be 3 or 4 digits."))
    redirect_url = fields.Url(allow_none=True, require_tld=False, schemes={"http", "https"})
    card_type = fields.String(allow_none=True, validate=validate.OneOf(["credit", "debit", "prepaid"]))
    external_identifier = Text(allow_none=True)
    buyer_id = fields.String(allow_none=True)
    buyer_external_identifier = Text(allow_none=True)


class StoredPaymentMethod(_Base):
    method = fields.String(required=True)
    id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    security_code = fields.String(allow_none=True, validate=validate.Regexp(r"^\d{3,4}$", error="Must be 3 or 4 digits."))
    redirect_url = fields.Url(allow_none=True, require_tld=False, schemes={"http", "https"})


def _CountryCode(**kw):
    return fields.String(validate=Exact(COUNTRY, error="Must be an ISO-3166 alpha-2 code."), **kw)


class _Echoed(Schema):
    """A nested object Gr4vy returns on the transaction as it was sent: every key it declares is on
    the answer (null when not sent), and, as Gr4vy's own ``additionalProperties: false`` says, a key
    it does not declare is a validation error rather than something silently dropped."""

    class Meta:
        unknown = RAISE

    @post_load
    def _every_key(self, data, **kw):
        return {name: data.get(name) for name in self.declared_fields}


class StatementDescriptor(_Echoed):
    name = Text(5, 22, allow_none=True)
    description = Text(5, 22, allow_none=True)
    city = Text(1, 50, allow_none=True)
    country = _CountryCode(allow_none=True)
    phone_number = fields.String(allow_none=True, validate=Exact(E164, error="Must be an E.164 number."))
    url = Text(1, 50, allow_none=True)
    postal_code = Text(1, 50, allow_none=True)


def _Amount(**kw):
    return StrictInt(validate=validate.Range(min=0, max=MAX_AMOUNT), **kw)


class CartItem(_Echoed):
    name = Text(1, 255, required=True)
    quantity = StrictInt(required=True, validate=validate.Range(min=1, max=MAX_AMOUNT))
    unit_amount = _Amount(required=True)
    discount_amount = _Amount(allow_none=True, load_default=0)
    tax_amount = _Amount(allow_none=True, load_default=0)
    external_identifier = Text(1, 200, allow_none=True)
    sku = Text(1, 200, allow_none=True)
    upc = Text(1, 50, allow_none=True)
    product_url = fields.String(allow_none=True)
    image_url = fields.String(allow_none=True)
    categories = fields.List(Text(1, 50), allow_none=True)
    # subcategories and brand are in the SDK's CartItem but not in the published API document,
    # which gives the limits of every other field: only their types are checked
    subcategories = fields.List(fields.String(), allow_none=True)
    brand = fields.String(allow_none=True)
    product_type = fields.String(allow_none=True, validate=validate.OneOf(PRODUCT_TYPES))
    seller_country = _CountryCode(allow_none=True)
    tax_exempt = StrictBool(allow_none=True)
    unit_of_measure = Text(1, 50, allow_none=True)
    commodity_code = Text(1, 50, allow_none=True)
    description = Text(1, 255, allow_none=True)
    duty_amount = _Amount(allow_none=True)
    shipping_amount = _Amount(allow_none=True)


class _PaymentMethodField(fields.Field):
    """``payment_method`` is a union keyed by ``method``."""

    variants = {"card": CardPaymentMethod, "id": StoredPaymentMethod}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError("Must be an object.")
        method = value.get("method")
        # A list or object is no more a method than an unknown string, and looking it up in
        # ``variants`` would raise TypeError (unhashable): answer the same 400 instead of a 500.
        variant = self.variants.get(method) if isinstance(method, str) else None
        if variant is None:
            raise ValidationError({"method": [f"Unsupported method; the sandbox accepts: {', '.join(self.variants)}."]})
        return schema(variant).load(value)


class TransactionCreate(_Base):
    amount = StrictInt(required=True, validate=validate.Range(min=0, max=MAX_AMOUNT))
    currency = fields.String(required=True, validate=validate.Regexp(CURRENCY, error="Must be an ISO-4217 code."))
    country = fields.String(allow_none=True, validate=validate.Regexp(COUNTRY, error="Must be an ISO-3166 alpha-2 code."))
    payment_method = _PaymentMethodField(required=True)
    intent = fields.String(validate=validate.OneOf(["authorize", "capture"]), load_default="authorize")
    store = StrictBool(load_default=False)
    payment_source = fields.String(validate=validate.OneOf(PAYMENT_SOURCES), load_default="ecommerce", allow_none=True)
    merchant_initiated = StrictBool(load_default=False)
    is_subsequent_payment = StrictBool(load_default=False)
    previous_scheme_transaction_id = Text(1, 100, allow_none=True)
    buyer_id = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    buyer_external_identifier = Text(allow_none=True)
    buyer = fields.Nested(GuestBuyer, allow_none=True)
    external_identifier = Text(allow_none=True)
    metadata = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=50)),
                           values=fields.String(validate=validate.Length(max=255)), allow_none=True)
    async_capture = StrictBool(load_default=False)
    statement_descriptor = fields.Nested(StatementDescriptor, allow_none=True)
    cart_items = fields.List(fields.Nested(CartItem), allow_none=True)

    @validates_schema
    def _rules(self, data, **kw):
        if data.get("intent") == "capture" and data.get("amount") == 0:
            raise ValidationError("Must be greater than 0 when intent is capture.", "amount")
        if data.get("buyer_id") and data.get("buyer_external_identifier"):
            raise ValidationError("buyer_id and buyer_external_identifier are mutually exclusive.", "buyer_id")
        if data.get("async_capture") and data.get("intent") != "capture":
            raise ValidationError("Only allowed when intent is capture.", "async_capture")


class TransactionCapture(_Base):
    amount = StrictInt(allow_none=True, validate=validate.Range(min=1, max=MAX_AMOUNT))
    final = StrictBool(load_default=True)
    external_identifier = Text(allow_none=True)
    reauthorize_if_authorization_expired = StrictBool(load_default=False)

    @validates_schema
    def _final(self, data, **kw):
        if data.get("final") is False:
            raise ValidationError("Multi-capture is not enabled on this connection.", "final")


class RefundCreate(_Base):
    amount = StrictInt(allow_none=True, validate=validate.Range(min=1, max=MAX_AMOUNT))
    target_type = fields.String(validate=validate.OneOf(["payment-method"]), load_default="payment-method")
    target_id = fields.String(allow_none=True)
    reason = Text(1, 100, allow_none=True)
    external_identifier = Text(allow_none=True)


class PaymentMethodCreate(CardPaymentMethod):
    @validates_schema
    def _method(self, data, **kw):
        if data.get("method") != "card":
            raise ValidationError("Unsupported method; the sandbox vaults cards only.", "method")
        if data.get("buyer_id") and data.get("buyer_external_identifier"):
            raise ValidationError("buyer_id and buyer_external_identifier are mutually exclusive.", "buyer_id")


def load(schema_cls, data, location: str = "body") -> dict:
    """Validate ``data``; a failure is ``Refusal("validation", [(JSON pointer, message), ...])``."""
    if not isinstance(data, dict):
        raise Refusal("validation", [("/", "Must be an object.")], location=location, type="type_error.dict")
    try:
        return schema(schema_cls).load(data)
    except ValidationError as exc:
        pairs = [("/" if path == "_schema" else "/" + path, message) for path, message in walk(exc.messages, sep="/")]
        raise Refusal("validation", pairs, location=location) from None
