"""Every body Paysera sends: the payment request resource, notifications (Notification Event
API) and the callback Paysera POSTs.

The callback itself carries only the notification id; the merchant fetches the notification
(event + resolved data) over the MAC-authenticated API, which is what makes it trustworthy.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...core.money import to_major
from ...core.store import public

CAPTURED = "payment_request.captured"
AUTHORIZED = "payment_request.authorized"          # only in the two-step mode
CANCELED = "payment_request.canceled"
CHECKOUT_TOKEN_ISSUED = "payment_request.checkout_token_issued"

# keys of the resource in the order Paysera's client lists its accessors
_PAYMENT_REQUEST_ORDER = (
    "id", "status", "business_id", "order_id", "unique_identifier", "price", "price_paid", "valid_until", "locale",
    "description", "method_country", "method_key", "payer", "information_request", "card_data_restriction",
    "accept_url", "cancel_url", "callback_url", "authorization_url", "affiliate_key", "parameters",
    "token_strategy", "issued_token", "created_at", "captured_at", "canceled_at")


def render_amount(minor: int, currency: str, form: str):
    """In the form the merchant sent it: a decimal string, or an integer in minor units."""
    return minor if form == "integer" else to_major(minor, currency)


def payment_request(pr: dict) -> dict:
    out = {}
    for key in _PAYMENT_REQUEST_ORDER:
        if key == "price":
            out["price"] = {"amount": render_amount(pr["_amount"], pr["_currency"], pr["_form"]),
                            "currency": pr["_currency"]}
        elif key == "price_paid":
            if pr.get("_paid") is not None:
                out["price_paid"] = {"amount": render_amount(pr["_paid"], pr["_currency"], pr["_form"]),
                                     "currency": pr["_currency"]}
        elif pr.get(key) is not None:
            out[key] = pr[key]
    return out


def public_info(pr: dict) -> dict:
    """What the payment page's script may read without credentials."""
    full = payment_request(pr)
    info = {k: full[k] for k in ("status", "price", "description") if k in full}
    info["payer_email_present"] = bool((full.get("payer") or {}).get("email"))
    return info


def notification(notification_id: str, event: str, payment_request: dict, created_at: int) -> dict:
    return {"id": notification_id, "event": event, "status": "new", "created_at": created_at,
            "data": {"payment_request": payment_request}}


def callback_body(notification_id: str) -> dict:
    return {"notification_id": notification_id}


def callback_url(url: str, notification_id: str) -> str:
    """``callback_url`` with ``notification_id`` added to its query (kept beside any of its own)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [("notification_id", notification_id)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def notification_view(n: dict) -> dict:
    return public(n)
