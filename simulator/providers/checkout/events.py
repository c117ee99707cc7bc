"""Checkout.com webhook payloads (fact sheet section 15) and the payment's wire shape."""
from __future__ import annotations

from ...core.clock import iso_z

EVENT_VERSION = "1.0.29"


def links(payment: dict, base: str, machine) -> dict:
    href = f"{base}/payments/{payment['id']}"
    out = {"self": {"href": href}, "actions": {"href": f"{href}/actions"}}
    if payment["status"] == "Pending" and payment.get("session_id"):
        out["redirect"] = {"href": f"{base}/3ds/{payment['session_id']}"}
        return out
    if machine.available_to_capture(payment) > 0:
        out["capture"] = {"href": f"{href}/captures"}
    if machine.available_to_void(payment) > 0:
        out["void"] = {"href": f"{href}/voids"}
    if machine.available_to_refund(payment) > 0:
        out["refund"] = {"href": f"{href}/refunds"}
    return out


def balances(payment: dict, machine) -> dict:
    return {
        "total_authorized": payment["authorized"],
        "total_voided": payment["voided"],
        "available_to_void": machine.available_to_void(payment),
        "total_captured": payment["captured"],
        "available_to_capture": machine.available_to_capture(payment),
        "total_refunded": payment["refunded"],
        "available_to_refund": machine.available_to_refund(payment),
    }


def source(payment: dict) -> dict:
    from .machine import Card
    out = Card(**payment["card"]).public()
    if payment.get("approved") and payment.get("instrument_id"):
        out = {"id": payment["instrument_id"], **out}
    return out


def customer(payment: dict, store) -> dict | None:
    if not payment.get("customer_id"):
        return None
    c = store.get("checkout", "customer", payment["customer_id"])
    if c is None:
        return {"id": payment["customer_id"]}
    out = {"id": c["id"], "email": c["email"]}
    if c.get("name"):
        out["name"] = c["name"]
    return out


def created_body(payment: dict, base: str, machine, store) -> dict:
    """The 201 (processed) or 202 (customer action needed) answer to POST /payments."""
    if payment["status"] == "Pending":
        body = {"id": payment["id"], "status": "Pending"}
        if payment.get("reference") is not None:
            body["reference"] = payment["reference"]
        if payment.get("customer_id"):
            body["customer"] = customer(payment, store)
        body["3ds"] = payment["three_ds"]
        body["_links"] = links(payment, base, machine)
        return body
    body = {
        "id": payment["id"], "action_id": payment["action_id"], "amount": payment["amount"],
        "currency": payment["currency"], "approved": payment["approved"], "status": payment["status"],
        "auth_code": payment["auth_code"], "response_code": payment["response_code"],
        "response_summary": payment["response_summary"],
    }
    if retry := machine.retry_view(payment):
        body["retry"] = retry
    if payment["status"] == "Authorized":
        body["expires_on"] = iso_z(payment["expires_on"], 7)
    body["balances"] = balances(payment, machine)
    body["risk"] = {"flagged": False}
    if payment.get("three_ds"):
        body["3ds"] = payment["three_ds"]
    body["source"] = source(payment)
    if payment.get("customer_id"):
        body["customer"] = customer(payment, store)
    body["processed_on"] = iso_z(payment["processed_on"], 7)
    if payment.get("reference") is not None:
        body["reference"] = payment["reference"]
    if payment.get("scheme_id"):
        body["scheme_id"] = payment["scheme_id"]
    if payment.get("eci"):
        body["eci"] = payment["eci"]
    body["processing"] = payment["processing"]
    body["_links"] = links(payment, base, machine)
    return body


def details_body(payment: dict, base: str, machine, store, with_actions: bool = False) -> dict:
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
    if retry := machine.retry_view(payment):
        body["retry"] = retry
    body["balances"] = balances(payment, machine)
    if payment.get("three_ds"):
        body["3ds"] = payment["three_ds"]
    body["risk"] = {"flagged": False}
    if payment.get("customer_id"):
        body["customer"] = customer(payment, store)
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
    body["_links"] = links(payment, base, machine)
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


def event(payment: dict, event_type: str, action: dict | None, event_id: str, now, machine, store) -> dict:
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
    if retry := machine.retry_view(payment):
        data["retry"] = retry
    data["risk"] = {"flagged": False}
    if payment.get("three_ds"):
        data["3ds"] = payment["three_ds"]
    if payment.get("scheme_id"):
        data["scheme_id"] = payment["scheme_id"]
    data["source"] = src
    if payment.get("customer_id"):
        data["customer"] = customer(payment, store)
    data["metadata"] = payment.get("metadata") or {}
    data["balances"] = balances(payment, machine)
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
