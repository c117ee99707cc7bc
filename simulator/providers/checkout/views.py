"""Every body Checkout.com sends: payments, actions, the vault, and webhook payloads (fact sheet
section 15). ``m`` is the provider's machine: balances and links follow its rules."""
from __future__ import annotations

from datetime import timedelta

from ...core.clock import iso_z, parse_instant
from .testcards import CardProfile

EVENT_VERSION = "1.0.29"
_CARD_DETAILS = ("scheme", "last4", "bin", "card_type", "card_category", "issuer", "issuer_country", "product_id",
                 "product_type")
# cards a state file kept before the scheme took the seed guide's casing ("Visa") are in capitals
_CAPITALS = {"VISA": "Visa", "MASTERCARD": "Mastercard", "AMEX": "Amex", "DISCOVER": "Discover",
             "DINERS": "Diners Club", "MAESTRO": "Maestro", "UNKNOWN": "Unknown"}


def card_view(card: dict) -> dict:
    """The card fields Checkout.com shows in ``source``, from a kept card (payment, token or instrument)."""
    profile = CardProfile(**card["profile"])
    out = {"type": "card"}
    for key in ("billing_address", "phone"):
        if card.get(key):
            out[key] = card[key]
    out.update({"expiry_month": card["expiry_month"], "expiry_year": card["expiry_year"]})
    if card.get("name"):
        out["name"] = card["name"]
    scheme = _CAPITALS.get(card["scheme"], card["scheme"])
    visa = scheme == "Visa"
    out.update({
        "scheme": scheme, "last4": card["last4"], "fingerprint": card["fingerprint"], "bin": card["bin"],
        "card_type": profile.card_type, "card_category": profile.card_category, "issuer": "Test Bank",
        "issuer_country": "GB", "product_id": "F" if visa else "MCW",
        "product_type": "Visa Classic" if visa else "Standard",
        "avs_check": "S", "cvv_check": "Y" if card.get("cvv_given") else "",
        "payment_account_reference": "",
    })
    return out


def retry_view(payment: dict) -> dict | None:
    plan = payment.get("retry")
    if not plan or plan["started_on"] is None:
        return None
    ends = parse_instant(plan["started_on"]) + timedelta(days=plan["end_after_days"])
    out = {"max_attempts": plan["max_attempts"], "attempts_made": plan["attempts_made"], "ends_on": iso_z(ends, 7)}
    if payment["status"] == "Retry Scheduled":
        out["next_attempt_on"] = plan["next_attempt_on"]
    return out


def links(payment: dict, base: str, m) -> dict:
    href = f"{base}/payments/{payment['id']}"
    out = {"self": {"href": href}, "actions": {"href": f"{href}/actions"}}
    if payment["status"] == "Pending" and payment.get("session_id"):
        out["redirect"] = {"href": f"{base}/3ds/{payment['session_id']}"}
        return out
    if m.available_to_capture(payment) > 0:
        out["capture"] = {"href": f"{href}/captures"}
    if m.available_to_void(payment) > 0:
        out["void"] = {"href": f"{href}/voids"}
    if m.available_to_refund(payment) > 0:
        out["refund"] = {"href": f"{href}/refunds"}
    return out


def balances(payment: dict, m) -> dict:
    return {
        "total_authorized": payment["authorized"],
        "total_voided": payment["voided"],
        "available_to_void": m.available_to_void(payment),
        "total_captured": payment["captured"],
        "available_to_capture": m.available_to_capture(payment),
        "total_refunded": payment["refunded"],
        "available_to_refund": m.available_to_refund(payment),
    }


def source(payment: dict) -> dict:
    out = card_view(payment["card"])
    if payment.get("approved") and payment.get("instrument_id"):
        out = {"id": payment["instrument_id"], **out}
    return out


def customer(payment: dict, m) -> dict | None:
    if not payment.get("customer_id"):
        return None
    c = m.store.get("customer", payment["customer_id"])
    if c is None:
        return {"id": payment["customer_id"]}
    out = {"id": c["id"], "email": c["email"]}
    if c.get("name"):
        out["name"] = c["name"]
    return out


def created_body(payment: dict, base: str, m) -> dict:
    """The 201 (processed) or 202 (customer action needed) answer to POST /payments."""
    if payment["status"] == "Pending":
        body = {"id": payment["id"], "status": "Pending"}
        if payment.get("reference") is not None:
            body["reference"] = payment["reference"]
        if payment.get("customer_id"):
            body["customer"] = customer(payment, m)
        body["3ds"] = payment["three_ds"]
        body["_links"] = links(payment, base, m)
        return body
    body = {
        "id": payment["id"], "action_id": payment["action_id"], "amount": payment["amount"],
        "currency": payment["currency"], "approved": payment["approved"], "status": payment["status"],
        "auth_code": payment["auth_code"], "response_code": payment["response_code"],
        "response_summary": payment["response_summary"],
    }
    if retry := retry_view(payment):
        body["retry"] = retry
    if payment["status"] == "Authorized":
        body["expires_on"] = iso_z(payment["expires_on"], 7)
    body["balances"] = balances(payment, m)
    body["risk"] = {"flagged": False}
    if payment.get("three_ds"):
        body["3ds"] = payment["three_ds"]
    body["source"] = source(payment)
    if payment.get("customer_id"):
        body["customer"] = customer(payment, m)
    body["processed_on"] = iso_z(payment["processed_on"], 7)
    if payment.get("reference") is not None:
        body["reference"] = payment["reference"]
    if payment.get("scheme_id"):
        body["scheme_id"] = payment["scheme_id"]
    if payment.get("eci"):
        body["eci"] = payment["eci"]
    body["processing"] = payment["processing"]
    body["_links"] = links(payment, base, m)
    return body


def details_body(payment: dict, base: str, m, with_actions: bool = False) -> dict:
    """GET /payments/{id}."""
    body = {"id": payment["id"], "requested_on": iso_z(payment["requested_on"], 7), "source": source(payment),
            "amount": payment["amount"], "currency": payment["currency"], "payment_type": payment["payment_type"],
            "merchant_initiated": payment["merchant_initiated"]}
    for key in ("reference", "description", "previous_payment_id"):
        if payment.get(key) is not None:
            body[key] = payment[key]
    if payment["approved"] is not None:
        body["approved"] = payment["approved"]
    if payment["status"] == "Authorized" and payment.get("expires_on"):
        body["expires_on"] = iso_z(payment["expires_on"], 7)
    body["status"] = payment["status"]
    if retry := retry_view(payment):
        body["retry"] = retry
    body["balances"] = balances(payment, m)
    if payment.get("three_ds"):
        body["3ds"] = payment["three_ds"]
    body["risk"] = {"flagged": False}
    if payment.get("customer_id"):
        body["customer"] = customer(payment, m)
    if payment.get("billing_descriptor"):
        body["billing_descriptor"] = payment["billing_descriptor"]
    body["metadata"] = payment.get("metadata") or {}
    if payment.get("eci"):
        body["eci"] = payment["eci"]
    if payment.get("scheme_id"):
        body["scheme_id"] = payment["scheme_id"]
    if payment.get("processing"):
        body["processing"] = payment["processing"]
    if payment.get("response_code"):
        body["response_code"] = payment["response_code"]
        body["response_summary"] = payment["response_summary"]
    if with_actions:
        body["actions"] = [{"id": a["id"], "type": a["type"], "response_code": a["response_code"],
                            "response_summary": a["response_summary"]} for a in reversed(payment["actions"])]
    body["_links"] = links(payment, base, m)
    return body


def action_body(action: dict) -> dict:
    body = {k: action[k] for k in ("id", "type", "processed_on", "amount", "approved")}
    if action["type"] in ("Authorization", "Card Verification"):
        body["auth_code"] = action["auth_code"]
    body.update({"response_code": action["response_code"], "response_summary": action["response_summary"]})
    body["reference"] = action.get("reference")  # the key is always there, null when none was given
    body["processing"] = action.get("processing") or {}
    body["metadata"] = action.get("metadata") or {}
    return body


def event(payment: dict, event_type: str, action: dict | None, event_id: str, now, m) -> dict:
    base = payment["base"]
    src = source(payment)
    src["last_4"] = src.pop("last4")  # webhooks spell it with an underscore
    data = {"id": payment["id"], "action_id": (action or {}).get("id", payment.get("action_id")),
            "reference": payment.get("reference"), "amount": (action or {}).get("amount", payment["amount"]),
            "currency": payment["currency"], "payment_type": payment["payment_type"],
            "processed_on": (action or {}).get("processed_on") or iso_z(payment["processed_on"] or now, 7)}
    if payment.get("auth_code"):
        data["auth_code"] = payment["auth_code"]
    if payment.get("response_code"):
        data["response_code"] = (action or {}).get("response_code", payment["response_code"])
        data["response_summary"] = (action or {}).get("response_summary", payment["response_summary"])
    if retry := retry_view(payment):
        data["retry"] = retry
    data["risk"] = {"flagged": False}
    if payment.get("three_ds"):
        data["3ds"] = payment["three_ds"]
    if payment.get("scheme_id"):
        data["scheme_id"] = payment["scheme_id"]
    data["source"] = src
    if payment.get("customer_id"):
        data["customer"] = customer(payment, m)
    data["metadata"] = payment.get("metadata") or {}
    data["balances"] = balances(payment, m)
    if payment.get("processing"):
        data["processing"] = payment["processing"]
    pay_href = f"{base}/payments/{payment['id']}"
    data["event_links"] = {"payment": pay_href, "payment_actions": f"{pay_href}/actions"}
    return {
        "id": event_id, "type": event_type, "version": EVENT_VERSION, "created_on": iso_z(now, 7), "data": data,
        "_links": {"self": {"href": f"{base}/workflows/events/{event_id}"},
                   "subject": {"href": f"{base}/workflows/events/subject/{payment['id']}"},
                   "payment": {"href": pay_href}, "payment_actions": {"href": f"{pay_href}/actions"}},
    }


def action_created(payment: dict, action: dict, reference, base: str) -> dict:
    """The 202 answer to a capture, refund, void or cancellation."""
    return {"action_id": action["id"], "reference": reference,
            "_links": {"payment": {"href": f"{base}/payments/{payment['id']}"}}}


def token_view(token: dict) -> dict:
    card = card_view(token)
    out = {"type": "card", "token": token["id"], "expires_on": iso_z(token["expires_on"], 7),
           **{k: card[k] for k in ("expiry_month", "expiry_year") + _CARD_DETAILS}}
    out.update({k: card[k] for k in ("billing_address", "phone", "name") if k in card})
    return out


def customer_view(c: dict, m, tenant: str) -> dict:
    out = {"id": c["id"], "email": c["email"]}
    for key in ("name", "phone"):
        if c.get(key):
            out[key] = c[key]
    out["metadata"] = c.get("metadata") or {}
    if c.get("default"):
        out["default"] = c["default"]
    out["instruments"] = [instrument_view(i, m, tenant) for i in
                          (m.store.get("instrument", x, tenant) for x in c["instruments"]) if i]
    return out


def instrument_view(inst: dict, m, tenant: str) -> dict:
    card = card_view(inst)
    out = {"id": inst["id"], "type": "card", "fingerprint": inst["fingerprint"],
           "expiry_month": inst["expiry_month"], "expiry_year": inst["expiry_year"]}
    if inst.get("name"):
        out["name"] = inst["name"]
    out.update({k: card[k] for k in _CARD_DETAILS})
    if inst.get("account_holder"):
        out["account_holder"] = inst["account_holder"]
    if inst.get("customer_id"):
        c = m.store.get("customer", inst["customer_id"], tenant)
        if c:
            out["customer"] = {"id": c["id"], "email": c["email"], "default": c.get("default") == inst["id"]}
            if c.get("name"):
                out["customer"]["name"] = c["name"]
    return out


def instrument_updated(inst: dict) -> dict:
    return {"type": "card", "fingerprint": inst["fingerprint"]}


def authentication_result(payment: dict, redirect: str | None) -> dict:
    """``POST /_sandbox/hosted/checkout/{id}``: where the 3DS step left the payment."""
    return {"id": payment["id"], "status": payment["status"], "redirect": redirect}


def not_awaiting(payment: dict | None, object_id: str) -> dict:
    if payment is None:
        return {"error": f"no payment waiting for authentication: {object_id}"}
    return {"error": "payment is not waiting for authentication", "status": payment["status"]}
