"""ZafaPay webhook payloads: flat JSON, no envelope, no event id.

The webhook ``status`` vocabulary differs from the API's: completed -> succeeded.
"""
from __future__ import annotations

from .schemas import amount_str, ts
from .testcards import DECLINE_CODES

EVENTS = ("payment.succeeded", "payment.failed", "payment.canceled", "payment.refunded", "payment.chargeback")
_STATUS = {"payment.succeeded": "succeeded", "payment.failed": "failed", "payment.canceled": "canceled",
           "payment.refunded": "refunded", "payment.chargeback": "chargeback"}


def error_object(code: str, fmt: str = "object"):
    category, action, message = DECLINE_CODES.get(code, ("soft_decline", "use_different_card", "The payment failed."))
    if fmt == "string":
        return message
    return {"code": code, "category": category, "message": message, "recommended_action": action}


def payload(event: str, pay: dict, *, merchant_id: str, merchant_name: str, now, error_format: str = "object",
            amount_minor: int | None = None) -> dict:
    card = pay.get("card") or {}
    cur = pay["currency"]
    body = {
        "event": event,
        "transaction_id": pay["id"],
        "merchant_id": merchant_id,
        "merchant_name": merchant_name,
        "status": _STATUS[event],
        "amount": amount_str(pay["amount"] if amount_minor is None else amount_minor, cur),
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
