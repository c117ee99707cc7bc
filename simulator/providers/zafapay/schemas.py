"""ZafaPay wire shapes: request validation (marshmallow) and response/webhook views.

Validation failures become ZafaPay's ``validation_error`` with ``param`` (the first failing field)
and ``details`` (every failing field). Unknown request fields are ignored [ASSUMED].
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from ...core.clock import iso_z
from ...core.money import to_major

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


class CardInput(_Base):
    number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    exp_month = fields.Integer(required=True, strict=False, validate=validate.Range(min=1, max=12))
    exp_year = fields.Integer(required=True, strict=False, validate=validate.Range(min=0, max=2199))
    cvc = fields.String(validate=validate.Regexp(r"^\d{3,4}$", error="must be 3 or 4 digits"))
    cardholder_name = fields.String(validate=validate.Length(max=255), allow_none=True)


class CreateToken(_Base):
    card = fields.Nested(CardInput, required=True)


def load(schema_cls, data):
    """-> (values, None) or (None, [(param, message), ...])."""
    if not isinstance(data, dict):
        return None, [("body", "must be a JSON object")]
    try:
        return schema_cls().load(data), None
    except ValidationError as exc:
        return None, flatten(exc.messages)


def flatten(messages, prefix="") -> list[tuple[str, str]]:
    out = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = prefix if key == "_schema" else (f"{prefix}.{key}" if prefix else str(key))
            out.extend(flatten(value, name))
    elif isinstance(messages, list):
        for item in messages:
            out.extend(flatten(item, prefix))
    else:
        out.append((prefix or "body", str(messages)))
    return out


# -- output ----------------------------------------------------------------------------------
def amount_str(minor: int, currency: str) -> str:
    """Every amount string has two decimals, "0.00" included [ASSUMED: one formatter for all]."""
    return f"{Decimal(to_major(minor, currency)):.2f}"


def amount_num(minor: int, currency: str):
    value = Decimal(to_major(minor, currency))
    return int(value) if value == value.to_integral_value() and currency == "jpy" else float(value)


def ts(when) -> str:
    return iso_z(when, 3) if when is not None else None


def created_view(pay: dict, base_url: str) -> dict:
    """The create-payment answer: hosted types get a payment_url, the others a transaction."""
    body = {
        "id": pay["request_id"],
        "status": pay["status"],
        "amount": amount_num(pay["amount"], pay["currency"]),
        "currency": pay["currency"],
        "external_id": pay["external_id"],
        "metadata": pay["metadata"],
        "flow_id": pay["flow_id"],
        "payment_type": pay["payment_type"],
    }
    if pay["payment_type"] in ("single", "initial"):
        body["payment_url"] = payment_url(pay, base_url)
    else:
        body["transaction_id"] = pay["id"]
        body["capture_method"] = pay["capture_method"]
        if pay["payment_type"] == "recurring":
            body["payment_method_id"] = pay["payment_method_id"]
        if pay.get("customer_id") is not None:
            body["customer_id"] = pay["customer_id"]
        if pay["status"] == "requires_action":
            body["redirect_url"] = f"{base_url}/checkout/{pay['request_id']}/3ds?token={pay['page_token']}"
    body["created_at"] = ts(pay["created_at"])
    return body


def payment_url(pay: dict, base_url: str) -> str:
    return f"{base_url}/checkout/{pay['request_id']}?token={pay['page_token']}"


def payment_view(pay: dict) -> dict:
    card = pay.get("card") or {}
    cur = pay["currency"]
    paid = pay["status"] != "pending"
    return {
        "id": pay["id"] if paid else pay["request_id"],
        "request_id": pay["request_id"],
        "status": pay["status"],
        "payment_type": pay["payment_type"],
        "amount": amount_str(pay["amount"], cur),
        "currency": cur,
        "capture_method": pay["capture_method"],
        "external_id": pay["external_id"],
        "payment_method": pay["payment_method"],
        "amount_captured": amount_str(pay.get("amount_captured") or 0, cur),
        "amount_refunded": amount_str(pay.get("amount_refunded") or 0, cur),
        "original_amount": amount_str(pay["amount"], cur),
        "original_currency": cur,
        "applied_rate": None,
        "card_brand": card.get("brand"),
        "card_last4": card.get("last4"),
        "cardholder_name": card.get("cardholder_name"),
        "card_exp_month": card.get("exp_month"),
        "card_exp_year": card.get("exp_year"),
        "card_country": card.get("country"),
        "card_funding": card.get("funding"),
        "payment_method_id": pay.get("payment_method_id"),
        "is_recurring": pay["payment_type"] == "recurring",
        "customer_id": pay.get("customer_id"),
        "email": pay.get("email"),
        "tel": pay.get("tel"),
        "product_name": pay.get("product_name"),
        "error_code": pay.get("error_code"),
        "flow_id": pay["flow_id"],
        "connector": pay["connector_id"],
        "psp_reference": pay.get("psp_reference"),
        "refunds": [refund_view(r, cur) for r in pay.get("refunds", [])],
        "metadata": pay["metadata"],
        "created_at": ts(pay["created_at"]),
        "updated_at": ts(pay["updated_at"]),
    }


def refund_view(refund: dict, currency: str) -> dict:
    return {"id": refund["id"], "amount": amount_str(refund["amount"], currency), "status": refund["status"],
            "reason": refund.get("reason"), "created_at": ts(refund["created_at"])}


def card_view(pm: dict) -> dict:
    card = pm["card"]
    return {
        "id": pm["id"],
        "type": "card",
        "connector_id": pm["connector_id"],
        "card": {"brand": card["brand"], "last4": card["last4"], "exp_month": card["exp_month"],
                 "exp_year": card["exp_year"]},
        "is_default": pm["is_default"],
        "status": pm["status"],
        "blocked_reason": pm.get("blocked_reason"),
        "created_at": ts(pm["created_at"]),
    }


def token_view(tok: dict) -> dict:
    card = tok["card"]
    return {
        "id": tok["id"],
        "card": {"bin": card["bin"], "last4": card["last4"], "brand": card["brand"],
                 "exp_month": card["exp_month"], "exp_year": card["exp_year"]},
        "connector_id": tok["connector_id"],
        "created_at": ts(tok["created_at"]),
        "expires_at": ts(tok["expires_at"]),
    }
