"""Request validation for Paysera Checkout.

Validation failures become Paysera's ``invalid_parameters`` error with ``error_properties`` keyed
by dotted snake_case paths (``price.amount``), the way Paysera's REST framework reports them.
"""
from __future__ import annotations

import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from ...core.money import MAX_MINOR, exponent, to_minor
from ..shape import Exact
from .views import render_amount

# ASCII digits only, matched whole: Python's \d takes any Unicode digit ("１０.００", "١٠.٥٠"), "$"
# matches before a trailing newline and strip() drops Unicode spaces, none of which Paysera's
# normalizer accepts.
_DECIMAL = re.compile(r"[0-9]+(?:[.,][0-9]+)?")
_URL = validate.URL(require_tld=False, schemes={"http", "https"})
# The last second a date can name (9999-12-31T23:59:59Z): Paysera states no upper bound, and a
# later valid_until could not be scheduled to expire.
MAX_VALID_UNTIL = 253402300799


class Amount(fields.Field):
    """Paysera's amount: a decimal string in major units, or a JSON integer in minor units.

    Deserializes to ``(form, text_or_int)``; the currency-dependent conversion happens in the
    enclosing Price schema because the number of decimals depends on the currency.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("This value should be a decimal number")
        if isinstance(value, int):
            return ("integer", value)
        if isinstance(value, float):
            raise ValidationError("A JSON number must be an integer amount in minor units; "
                                  "send a decimal string such as \"10.00\" for major units")
        if isinstance(value, str) and _DECIMAL.fullmatch(value):
            return ("string", value.replace(",", "."))
        raise ValidationError("This value should be a decimal number")


def amount_to_minor(form_value, currency: str) -> int:
    form, value = form_value
    if form == "integer":
        minor = value
    else:
        digits = value.split(".")[1] if "." in value else ""
        if len(digits) > exponent(currency):
            raise ValidationError("Too small fraction for the amount specified")
        minor = to_minor(value, currency)
    if minor <= 0:
        raise ValidationError("Amount must be greater than zero")
    if minor > MAX_MINOR:
        raise ValidationError(f"Amount must not exceed {render_amount(MAX_MINOR, currency, form)}")
    return minor


class StrictBoolean(fields.Field):
    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("This value should be of type bool")
        return value


class Price(Schema):
    class Meta:
        unknown = EXCLUDE
    amount = Amount(required=True)
    currency = fields.String(required=True, validate=Exact(
        r"^[A-Z]{3}$", error="Currency must be a 3 letter ISO 4217 code"))

    @validates_schema
    def _minor(self, data, **kw):
        if "amount" in data and "currency" in data:
            try:
                data["minor"] = amount_to_minor(data["amount"], data["currency"])
            except ValidationError as exc:
                raise ValidationError(exc.messages, "amount") from None


class Payer(Schema):
    class Meta:
        unknown = EXCLUDE
    email = fields.Email(required=True)
    name = fields.String()
    surname = fields.String()
    full_name = fields.String()
    personal_code = fields.String()
    ip = fields.String()
    ip_country = fields.String()
    account = fields.String()
    account_number = fields.String()


_NON_EMPTY = validate.Length(min=1, error="This value should not be blank")


class PaymentRequestCreate(Schema):
    class Meta:
        unknown = EXCLUDE
    business_id = fields.String(required=True, validate=_NON_EMPTY)
    order_id = fields.String(required=True, validate=_NON_EMPTY)
    unique_identifier = fields.String(validate=_NON_EMPTY)
    price = fields.Nested(Price, required=True)
    valid_until = fields.Integer(strict=True, validate=validate.Range(
        min=1, max=MAX_VALID_UNTIL, error="This value should be between {min} and {max}."))
    locale = fields.String(required=True, validate=Exact(r"^[a-z]{2}$", error="Invalid locale"))
    description = fields.String(required=True, validate=validate.Length(min=1, max=255))
    method_country = fields.String(validate=Exact(r"^[A-Za-z]{2}$", error="Invalid country code"))
    method_key = fields.String(required=True, validate=_NON_EMPTY)
    payer = fields.Nested(Payer, required=True)
    information_request = fields.Dict()
    card_data_restriction = fields.Dict()
    accept_url = fields.String(validate=_URL)
    cancel_url = fields.String(validate=_URL)
    callback_url = fields.String(required=True, validate=_URL)
    affiliate_key = fields.String()
    parameters = fields.Dict()
    token_strategy = fields.String(validate=validate.OneOf(["required", "optional"]))
    refund_on_capture = StrictBoolean()   # alias of parameters.refund_on_capture

    @validates_schema
    def _rules(self, data, **kw):
        params = data.get("parameters") or {}
        if "refund_on_capture" in params and not isinstance(params["refund_on_capture"], bool):
            raise ValidationError("This value should be of type bool", "parameters.refund_on_capture")
        if data.get("token_strategy") and data.get("method_key") not in (None, "card"):
            raise ValidationError("A token can be issued only by a token-capable method (card)", "method_key")


class Authorize(Schema):
    class Meta:
        unknown = EXCLUDE
    token = fields.String(required=True, validate=_NON_EMPTY)


class Capture(Schema):
    class Meta:
        unknown = EXCLUDE
    capture_amount = fields.Nested(Price)
