"""Every body Bank 131 sends: API answers and webhook payloads (which share the session shape).

Every Bank 131 webhook is `{"type": ..., "session": PaymentSession}`; the session is rendered the
same way as in API responses, in the API version the session was created with (v2 adds
`payment_list` next to `acquiring_payments`, the PHP SDK reads either).
"""
from __future__ import annotations

from ...core.store import public

READY_TO_CONFIRM = "ready_to_confirm"
ACTION_REQUIRED = "action_required"
PAYMENT_FINISHED = "payment_finished"
PAYMENT_REFUNDED = "payment_refunded"

_PAYMENT_ORDER = ("id", "status", "created_at", "updated_at", "finished_at", "customer", "payment_details",
                  "amount_details", "amounts", "payment_options", "recurrent", "customer_interaction",
                  "refunds", "metadata", "error")


def ok(**body) -> dict:
    return {"status": "ok", **body}


def render_token(rec: dict) -> dict:
    return {"token": rec["token"], "created_at": rec["created_at"], "finished_at": rec["finished_at"],
            "is_active": rec["is_active"]}


def render_payment(payment: dict, token_lookup) -> dict:
    out = {}
    for key in _PAYMENT_ORDER:
        if key == "recurrent":
            token = payment.get("_issued_token")
            rec = token_lookup(token) if token else None
            if rec is not None:
                out["recurrent"] = render_token(rec)
        elif key == "refunds":
            if payment.get("refunds"):
                out["refunds"] = [public(r) for r in payment["refunds"]]
        elif payment.get(key) is not None:
            out[key] = payment[key]
    return out


def render_session(session: dict, token_lookup, version: int | None = None) -> dict:
    version = version or session.get("_version", 1)
    out = {"id": session["id"], "status": session["status"], "created_at": session["created_at"],
           "updated_at": session["updated_at"]}
    for key in ("finished_at", "next_action", "error"):
        if session.get(key) is not None:
            out[key] = session[key]
    payments = [render_payment(p, token_lookup) for p in session["_payments"]]
    if payments:
        out["acquiring_payments"] = payments
        if version >= 2:
            out["payment_list"] = payments
    return out


def payload(event_type: str, session: dict, token_lookup) -> dict:
    return {"type": event_type, "session": render_session(session, token_lookup)}
