"""Every body ZafaPay sends: API answers and webhook payloads.

Amounts: ZafaPay's own documentation gives the create-payment and capture answers ``amount`` as a
JSON number and every other amount (GET payment, refunds, webhooks) as a two-decimal string; the
sandbox keeps exactly that split (``amount_num`` / ``amount_str``).

Webhooks are flat JSON, no envelope, no event id; their ``status`` vocabulary differs from the
API's: completed -> succeeded.
"""
from __future__ import annotations

from decimal import Decimal

from ...core.clock import iso_z
from ...core.money import to_major
from .testcards import DECLINE_CODES


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
        "amount_refunded": amount_str(pay.get("amount_refunded") or 0, cur),
        # FX is not simulated: the amount before conversion is the amount itself
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


def capture_view(pay: dict) -> dict:
    return {"id": pay["id"], "status": pay["status"], "amount": amount_num(pay["amount"], pay["currency"])}


def status_view(obj: dict) -> dict:
    """The answer of void, unblock and detach: the object's id, new status and time."""
    return {"id": obj["id"], "status": obj["status"], "updated_at": ts(obj["updated_at"])}


def blocked_view(pm: dict) -> dict:
    return {"id": pm["id"], "status": pm["status"], "blocked_reason": pm["blocked_reason"],
            "updated_at": ts(pm["updated_at"])}


def refund_created_view(pay: dict, item: dict) -> dict:
    return {"id": item["id"], "transaction_id": pay["id"], "amount": amount_str(item["amount"], pay["currency"]),
            "currency": pay["currency"], "status": item["status"], "reason": item["reason"],
            "psp_refund_id": item["psp_refund_id"], "refund_fee": amount_str(0, pay["currency"]),
            "created_at": ts(item["created_at"])}


def customer_cards_view(customer_id: str, cards: list[dict]) -> dict:
    return {"customer_id": customer_id, "payment_methods": [card_view(c) for c in cards]}


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


# -- webhooks ------------------------------------------------------------------------------
EVENTS = ("payment.succeeded", "payment.failed", "payment.canceled", "payment.refunded", "payment.chargeback")
_STATUS = {"payment.succeeded": "succeeded", "payment.failed": "failed", "payment.canceled": "canceled",
           "payment.refunded": "refunded", "payment.chargeback": "chargeback"}


def error_object(code: str, fmt: str = "object"):
    category, action, message = DECLINE_CODES.get(code, ("soft_decline", "use_different_card", "The payment failed."))
    if fmt == "string":
        return message
    return {"code": code, "category": category, "message": message, "recommended_action": action}


def webhook(event: str, pay: dict, *, merchant_id: str, merchant_name: str, now, error_format: str = "object") -> dict:
    card = pay.get("card") or {}
    cur = pay["currency"]
    body = {
        "event": event,
        "transaction_id": pay["id"],
        "merchant_id": merchant_id,
        "merchant_name": merchant_name,
        "status": _STATUS[event],
        "amount": amount_str(pay["amount"], cur),
        "currency": cur,
        "payment_method": pay["payment_method"],
    }
    # payment_method_id only for recurring charges or when this payment saved the card
    if pay.get("payment_method_id"):
        body["payment_method_id"] = pay["payment_method_id"]
    body["is_recurring"] = pay["payment_type"] == "recurring"
    if pay.get("card_saved"):
        body["save_card"] = True
    body.update({
        "external_id": pay.get("external_id"),
        "product_name": pay.get("product_name"),
        "customer_id": pay.get("customer_id"),
        "email": pay.get("email"),
        "tel": pay.get("tel"),
    })
    if event == "payment.refunded":
        body["amount_refunded"] = amount_str(pay.get("amount_refunded") or 0, cur)
    if event == "payment.failed":
        body["error"] = error_object(pay.get("error_code") or "card_declined", error_format)
    body.update({
        "card_brand": card.get("brand"),
        "card_last4": card.get("last4"),
        "cardholder_name": card.get("cardholder_name"),
        "card_exp_month": card.get("exp_month"),
        "card_exp_year": card.get("exp_year"),
        "metadata": pay.get("metadata") or {},
        "created_at": ts(pay["created_at"]),
        "timestamp": ts(now),
    })
    return body
