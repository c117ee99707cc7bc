"""Notification payloads (Notification Event API) and the callback Paysera POSTs.

The callback itself carries only the notification id; the merchant fetches the notification
(event + resolved data) over the MAC-authenticated API, which is what makes it trustworthy.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

CAPTURED = "payment_request.captured"
AUTHORIZED = "payment_request.authorized"          # only in the two-step mode
CANCELED = "payment_request.canceled"
CHECKOUT_TOKEN_ISSUED = "payment_request.checkout_token_issued"


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


def render_notification(n: dict) -> dict:
    return {k: v for k, v in n.items() if not k.startswith("_")}
