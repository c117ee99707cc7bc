"""Request validation (marshmallow). Shapes follow the official PHP SDK's request objects.

Unknown fields are ignored rather than rejected: the SDK and other clients send fields the sandbox
does not model (subscription, platform_details, X-SDK specifics), and the bank accepts them.
"""
from __future__ import annotations

import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

from ...core.inputs import http_url
from ...core.money import MAX_MINOR

CURRENCIES = ("rub", "usd", "eur")


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


class StrictInt(fields.Integer):
    """JSON integers only: no strings, no floats, no booleans."""

    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("must be an integer")
        return value


class Flag(fields.Boolean):
    """A boolean; a third-party widget integration sends "true"/"false" strings, accept those too."""
    truthy = {True, "true", "True"}
    falsy = {False, "false", "False"}


class AmountDetails(_Base):
    amount = StrictInt(required=True, validate=[validate.Range(min=1, error="must be greater than 0"),
                                             validate.Range(max=MAX_MINOR, error="must be at most {max}")])
    currency = fields.String(required=True)

    @post_load
    def _currency(self, data, **kw):
        data["currency"] = data["currency"].lower()
        return data

    @validates_schema
    def _check_currency(self, data, **kw):
        cur = data.get("currency")
        if isinstance(cur, str) and cur.lower() not in CURRENCIES:
            raise ValidationError(f"must be one of {', '.join(CURRENCIES)}", "currency")


class Contact(_Base):
    email = fields.String()
    phone = fields.String()


class Customer(_Base):
    reference = fields.String(validate=validate.Length(min=1, max=255))
    contacts = fields.List(fields.Nested(Contact))


# Digits are ASCII 0-9 and a pattern ends at \Z: Python's \d also takes fullwidth, Arabic-Indic and
# other Unicode digits, and $ matches before a trailing newline, so "１２" or "12\n" would pass.
class BankCard(_Base):
    number = fields.String(required=True)
    expiration_month = fields.String(required=True, validate=validate.Regexp(r"^(0[1-9]|1[0-2])\Z",
                                                                             error="must be two digits 01-12"))
    expiration_year = fields.String(required=True, validate=validate.Regexp(r"^([0-9]{2}|[0-9]{4})\Z",
                                                                            error="must be two digits"))
    security_code = fields.String(validate=validate.Regexp(r"^[0-9]{3,4}\Z", error="must be 3 or 4 digits"))
    cardholder_name = fields.String()

    @validates_schema
    def _number(self, data, **kw):
        # spaces and dashes between the digit groups are tolerated; ASCII ones only, as the digits,
        # and no other separator (a tab, a newline)
        number = data.get("number")
        if isinstance(number, str) and not re.fullmatch(r"[0-9]{14,19}", re.sub(r"[ -]", "", number)):
            raise ValidationError("must be 14 to 19 digits", "number")


class Card(_Base):
    type = fields.String(required=True, validate=validate.OneOf(["bank_card", "encrypted_card", "tokenized_card"]))
    bank_card = fields.Nested(BankCard)

    @validates_schema
    def _variant(self, data, **kw):
        if data.get("type") == "bank_card" and "bank_card" not in data:
            raise ValidationError("required when type is bank_card", "bank_card")
        if data.get("type") in ("encrypted_card", "tokenized_card"):
            raise ValidationError(f"{data['type']} is not simulated; send bank_card", "type")


class RecurrentDetails(_Base):
    token = fields.String(required=True, validate=validate.Length(min=1))
    initiator = fields.String(validate=validate.OneOf(["merchant", "client"]))
    security_code = fields.String()


class PaymentDetails(_Base):
    type = fields.String(required=True, validate=validate.OneOf(["card", "recurrent"]))
    card = fields.Nested(Card)
    recurrent = fields.Nested(RecurrentDetails)

    @validates_schema
    def _variant(self, data, **kw):
        kind = data.get("type")
        if kind and kind not in data:
            raise ValidationError(f"required when type is {kind}", kind)


class PaymentOptions(_Base):
    return_url = fields.String(allow_none=True, validate=http_url)
    recurrent = Flag(allow_none=True)
    subscription = fields.Raw()
    platform_details = fields.Raw()


class _PaymentFields(_Base):
    amount_details = fields.Nested(AmountDetails)
    customer = fields.Nested(Customer)
    payment_details = fields.Nested(PaymentDetails)
    payment_options = fields.Nested(PaymentOptions)
    metadata = fields.Raw(allow_none=True)


class SessionCreate(_PaymentFields):
    pass


class InitPayment(_PaymentFields):
    pass


class StartPayment(_PaymentFields):
    session_id = fields.String(required=True)


class SessionRef(_Base):
    session_id = fields.String(required=True)
    confirm_information = fields.Raw()
    amount_details = fields.Nested(AmountDetails)
    metadata = fields.Raw(allow_none=True)


class AcquiringWidget(_Base):
    session_id = fields.String(required=True)
    show_recurrent_checkbox = Flag()
    success_return_url = fields.String(validate=http_url)
    failure_return_url = fields.String(validate=http_url)
    locale = fields.String()


class TokenRequest(_Base):
    acquiring_widget = fields.Nested(AcquiringWidget)
    tokenize_widget = fields.Raw()
    self_employed_widget = fields.Raw()
    show_recurrent_checkbox = Flag()   # the unofficial PyPI client puts it here

    @validates_schema
    def _something(self, data, **kw):
        if not any(k in data for k in ("acquiring_widget", "tokenize_widget", "self_employed_widget")):
            raise ValidationError("one of acquiring_widget, tokenize_widget, self_employed_widget is required",
                                  "acquiring_widget")


class TokenRef(_Base):
    token = fields.String(required=True, validate=validate.Length(min=1))


class TokenInfo(_Base):
    type = fields.String(required=True, validate=validate.OneOf(["card", "public_token", "recurrent_token"]))
    recurrent_token = fields.Nested(TokenRef)
    public_token = fields.Nested(TokenRef)

    @validates_schema
    def _variant(self, data, **kw):
        kind = data.get("type")
        if kind in ("recurrent_token", "public_token") and kind not in data:
            raise ValidationError(f"required when type is {kind}", kind)


class RecurrentRef(_Base):
    recurrent = fields.Nested(TokenRef, required=True)
