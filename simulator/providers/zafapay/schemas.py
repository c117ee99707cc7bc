"""ZafaPay request validation (marshmallow).

Validation failures become ZafaPay's ``validation_error`` with ``param`` (the first failing field)
and ``details`` (every failing field). Unknown request fields are ignored [ASSUMED].
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

_CURRENCY = re.compile(r"^[a-z]{3}$")
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]+$")


def _strict_bool(**kw):
    return fields.Boolean(truthy={True}, falsy={False}, **kw)


def _text(max_len=255, **kw):
    return fields.String(validate=[validate.Length(min=1, max=max_len), validate.Regexp(_PRINTABLE)], **kw)


class Amount(fields.Field):
    """A JSON number with at most two decimals; kept as an exact Decimal."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("must be a number")
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise ValidationError("must be a number") from None
        if not amount.is_finite():
            raise ValidationError("must be a number")
        return amount


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE


class CreatePayment(_Base):
    amount = Amount(required=True)
    currency = fields.String(required=True, validate=validate.Regexp(_CURRENCY, error="must be a 3-letter lowercase code"))
    capture_method = fields.String(validate=validate.OneOf(["automatic", "manual"]))
    flow_id = _text(64)
    external_id = _text(255, allow_none=True)
    metadata = fields.Dict(keys=fields.String(), allow_none=True)
    customer_id = _text(255)
    save_card = _strict_bool()
    payment_method_id = fields.String(validate=validate.Regexp(r"^pmi_[A-Za-z0-9]{1,64}$", error="must be a pmi_ id"))
    token = fields.String(validate=validate.Regexp(r"^tok_[A-Za-z0-9]{1,64}$", error="must be a tok_ id"))
    return_url = fields.Url(require_tld=False, schemes={"http", "https"})
    payment_method = fields.Raw()
    email = fields.Email()
    tel = _text(32)
    name = _text(255)
    product_name = _text(255)

    @validates_schema
    def _combinations(self, data, **kw):
        if data.get("payment_method_id"):
            if data.get("save_card") or data.get("token"):
                raise ValidationError("cannot be combined with save_card or token", "payment_method_id")
            if not data.get("customer_id"):
                raise ValidationError("is required with payment_method_id", "customer_id")
        if data.get("save_card") and not data.get("customer_id"):
            raise ValidationError("is required when save_card is true", "customer_id")
        pm = data.get("payment_method")
        if pm is not None:
            kind = pm.get("type") if isinstance(pm, dict) else pm
            if not isinstance(kind, str):
                raise ValidationError("must be a string or an object with type", "payment_method")


class Capture(_Base):
    amount = Amount()


class Refund(_Base):
    amount = Amount()
    currency = fields.String(validate=validate.Regexp(_CURRENCY, error="must be a 3-letter lowercase code"))
    reason = _text(500, allow_none=True)


class Block(_Base):
    reason = _text(500, required=True)


class _Whole(fields.Integer):
    """A JSON integer, or its ASCII digits as text (a hosted page's form sends text). ``int()``
    would also cut a fraction (1.9 -> 1, a different expiry month) and read fullwidth or other
    Unicode digits."""

    def __init__(self, **kw):
        super().__init__(strict=True, **kw)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) and _DIGITS.fullmatch(value):
            value = int(value)
        return super()._deserialize(value, attr, data, **kwargs)


_DIGITS = re.compile(r"[0-9]{1,4}")


class CardInput(_Base):
    number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    exp_month = _Whole(required=True, validate=validate.Range(min=1, max=12))
    exp_year = _Whole(required=True, validate=validate.Range(min=0, max=2199))
    # [0-9] and \Z: \d takes Unicode digits and $ matches before a final newline
    cvc = fields.String(validate=validate.Regexp(r"^[0-9]{3,4}\Z", error="must be 3 or 4 digits"))
    cardholder_name = fields.String(validate=validate.Length(max=255), allow_none=True)


class CreateToken(_Base):
    card = fields.Nested(CardInput, required=True)
