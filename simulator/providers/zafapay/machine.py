"""ZafaPay business rules: one transition table per stateful object, and the charge paths.

A payment is one object from the moment it is created (``req_``) until it is settled; its
transaction id (``tx_``) is allotted at creation and surfaces once the customer (or the saved
card) has paid. The tables below are the whole state machine: any (status, event) pair that is not
listed is answered with 400 ``invalid_status``.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from ...core import cards as cardlib
from ...core.ids import ALNUM
from ...core.money import to_major, to_minor
from . import testcards

# payment status x event -> next status  (``new`` is the instant before the first status)
PAYMENT_TRANSITIONS = {
    ("new", "open"): "pending",                 # hosted: waits for the customer
    ("new", "complete"): "completed",           # recurring / token, automatic capture
    ("new", "authorize"): "authorized",         # recurring / token, manual capture
    ("new", "challenge"): "requires_action",    # token payment needs 3-D Secure
    ("new", "fail"): "failed",
    ("pending", "complete"): "completed",
    ("pending", "authorize"): "authorized",
    ("pending", "challenge"): "requires_action",
    ("pending", "fail"): "failed",
    ("pending", "cancel"): "canceled",          # customer cancels on the hosted page
    ("requires_action", "complete"): "completed",
    ("requires_action", "authorize"): "authorized",
    ("requires_action", "fail"): "failed",
    ("requires_action", "cancel"): "canceled",  # customer abandons 3-D Secure
    ("authorized", "capture"): "completed",
    ("authorized", "void"): "canceled",
    ("completed", "refund_partial"): "partially_refunded",
    ("completed", "refund_full"): "refunded",
    ("partially_refunded", "refund_partial"): "partially_refunded",
    ("partially_refunded", "refund_full"): "refunded",
}

# saved card status x event -> next status; anything on a detached card is payment_method_detached
CARD_TRANSITIONS = {
    ("active", "block"): "blocked",
    ("blocked", "unblock"): "active",
    ("active", "detach"): "detached",
    ("blocked", "detach"): "detached",
}

TOKEN_LIFETIME = timedelta(minutes=30)


# -- helpers ---------------------------------------------------------------------------------
def move(p, pay: dict, event: str, now) -> str:
    to = PAYMENT_TRANSITIONS.get((pay["status"], event))
    if to is None:
        p.reject("invalid_status", 400, f"The payment cannot be {_past(event)} in status {pay['status']}.")
    pay["status"] = to
    pay["updated_at"] = now
    return to


def _past(event: str) -> str:
    return {"capture": "captured", "void": "voided", "refund_partial": "refunded", "refund_full": "refunded",
            "cancel": "canceled", "complete": "completed", "authorize": "authorized", "fail": "failed",
            "challenge": "challenged", "open": "opened"}.get(event, event)


def move_card(p, pm: dict, event: str, now) -> None:
    if pm["status"] == "detached":
        p.reject("payment_method_detached", 400, "The payment method has been detached and cannot be used.",
                 param="id")
    to = CARD_TRANSITIONS.get((pm["status"], event))
    if to is None:
        p.reject("invalid_status", 400, f"The payment method cannot be {event}ed in status {pm['status']}.")
    pm["status"] = to
    pm["updated_at"] = now


def _minor(p, value: Decimal, currency: str, param: str = "amount") -> int:
    try:
        minor = to_minor(value, currency)
    except ValueError:
        p.reject("invalid_amount", 400, f"The amount has too many decimal places for {currency}.", param=param)
    if minor <= 0:
        p.reject("invalid_amount", 400, "The amount must be greater than zero.", param=param)
    return minor


def resolve_flow(p, flow_id: str | None) -> tuple[str, dict]:
    flow_id = flow_id or testcards.DEFAULT_FLOW
    flow = testcards.FLOWS.get(flow_id)
    if flow is None:
        p.reject("flow_not_found", 404, f"No flow {flow_id} exists.", param="flow_id")
    if not flow["active"]:
        p.reject("flow_not_active", 400, f"The flow {flow_id} is not active.", param="flow_id")
    return flow_id, flow


def card_from_input(p, card: dict, now, *, salt: str) -> dict:
    """Validate a typed card; keep BIN, last four, fingerprint and the outcome profile only."""
    number = cardlib.digits_only(card.get("number", ""))
    if not cardlib.luhn_ok(number):
        p.reject("validation_error", 400, "The card number is invalid.", param="card.number",
                 details=[{"param": "card.number", "message": "invalid card number"}])
    exp_month, exp_year = int(card["exp_month"]), int(card["exp_year"])
    if exp_year < 100:
        exp_year += 2000
    if cardlib.expired(exp_month, exp_year, now):
        p.reject("validation_error", 400, "The card's expiry date is in the past.", param="card.exp_year",
                 details=[{"param": "card.exp_year", "message": "expiry date is in the past"}])
    return {
        "bin": number[:6], "last4": number[-4:], "brand": testcards.brand(cardlib.scheme(number)),
        "exp_month": exp_month, "exp_year": exp_year, "fingerprint": cardlib.fingerprint(number, salt),
        "cardholder_name": card.get("cardholder_name") or None, "country": "US", "funding": "credit",
        "profile": testcards.profile(number),
    }


def public_card(card: dict) -> dict:
    return {k: v for k, v in card.items() if k != "profile"}


# -- lookups ---------------------------------------------------------------------------------
def find_payment(p, tenant: str, any_id: str) -> dict:
    sb = p.sandbox
    req_id = any_id
    if any_id.startswith("tx_"):
        alias = sb.store.get(p.name, "tx", any_id, tenant=tenant)
        req_id = alias["request_id"] if alias else None
    pay = sb.store.get(p.name, "payment", req_id, tenant=tenant) if req_id else None
    if pay is None:
        p.reject("not_found", 404, f"No payment {any_id} exists.", param="id")
    return pay


def find_card(p, tenant: str, pmi: str) -> dict:
    pm = p.sandbox.store.get(p.name, "payment_method", pmi, tenant=tenant)
    if pm is None:
        p.reject("not_found", 404, f"No payment method {pmi} exists.", param="payment_method_id")
    return pm


def cards_of(p, tenant: str, customer_id: str) -> list[dict]:
    """Newest first; detached cards are gone for good."""
    found = p.sandbox.store.find(p.name, "payment_method", tenant,
                                 lambda pm: pm["customer_id"] == customer_id and pm["status"] != "detached")
    return list(reversed(list(found)))


# -- create ----------------------------------------------------------------------------------
def create_payment(p, tenant: str, data: dict, *, authorize_now=True):
    """-> (http status, payment). Raises the provider error for anything refused before a charge."""
    sb = p.sandbox
    now = p.now(tenant)
    currency = data["currency"]
    if currency not in p.currencies():
        p.reject("unsupported_currency", 400, f"The currency {currency} is not enabled.", param="currency")
    amount = _minor(p, data["amount"], currency)
    major = Decimal(to_major(amount, currency))
    low, high = p.amount_limits()
    if major < low:
        p.reject("amount_below_minimum", 400, f"The amount must be at least {low:.2f}.", param="amount")
    if major > high:
        p.reject("amount_above_maximum", 400, f"The amount must be at most {high:.2f}.", param="amount")
    method = data.get("payment_method", "card")
    method = method.get("type") if isinstance(method, dict) else method
    if method != "card":
        p.reject("not_supported", 400, f"The payment method {method} is not supported in the sandbox.",
                 param="payment_method")
    flow_id, flow = resolve_flow(p, data.get("flow_id"))

    if data.get("payment_method_id"):
        payment_type = "recurring"
    elif data.get("token"):
        payment_type = "token"
    elif data.get("save_card"):
        payment_type = "initial"
    else:
        payment_type = "single"
    if (data.get("save_card") or data.get("payment_method_id")) and not flow["recurring"]:
        p.reject("recurring_not_supported", 400,
                 f"The connector of flow {flow_id} does not support recurring payments.", param="flow_id")

    pay = {
        "id": sb.ids.prefixed("tx_", 24, ALNUM),
        "request_id": sb.ids.prefixed("req_", 24, ALNUM),
        "status": "new",
        "payment_type": payment_type,
        "amount": amount,
        "currency": currency,
        "capture_method": data.get("capture_method") or "automatic",
        "flow_id": flow_id,
        "connector_id": flow["connector_id"],
        "external_id": data.get("external_id"),
        "metadata": data.get("metadata") or {},
        "customer_id": data.get("customer_id"),
        "save_card": bool(data.get("save_card")),
        "email": data.get("email"),
        "tel": data.get("tel"),
        "name": data.get("name"),
        "product_name": data.get("product_name"),
        "payment_method": "card",
        "return_url": data.get("return_url"),
        "card": None,
        "payment_method_id": None,
        "card_saved": False,
        "error_code": None,
        "amount_captured": 0,
        "amount_refunded": 0,
        "refunds": [],
        "psp_reference": None,
        "page_token": sb.ids.token(32, ALNUM),
        "created_at": now,
        "updated_at": now,
    }

    if payment_type == "recurring":
        return _charge_saved_card(p, tenant, pay, data["payment_method_id"], now)
    if payment_type == "token":
        return _charge_token(p, tenant, pay, data["token"], now)
    with sb.store.lock:
        move(p, pay, "open", now)
        _store(p, tenant, pay)
    return 201, pay


def _store(p, tenant: str, pay: dict) -> None:
    sb = p.sandbox
    with sb.store.lock:
        if sb.store.get(p.name, "tx", pay["id"]) is None:
            sb.store.put(p.name, "tx", pay["id"], {"request_id": pay["request_id"]}, tenant)
        sb.store.put(p.name, "payment", pay["request_id"], pay, tenant)


def _charge_saved_card(p, tenant, pay, pmi, now):
    sb = p.sandbox
    fx = p.effects()
    with sb.store.lock:
        pm = find_card(p, tenant, pmi)
        if pm["customer_id"] != pay["customer_id"]:
            p.reject("not_found", 404, f"No payment method {pmi} exists for customer {pay['customer_id']}.",
                     param="payment_method_id")
        if pm["status"] == "detached":
            p.reject("payment_method_detached", 400, "The payment method has been detached and cannot be used.",
                     param="payment_method_id")
        if pm["status"] == "blocked":
            p.reject("payment_method_blocked", 400, "The payment method is blocked.", param="payment_method_id")
        if pm["connector_id"] != pay["connector_id"]:
            p.reject("recurring_not_supported", 400,
                     "The card was saved with another connector than the one of this flow.", param="flow_id")
        if fx.token in ("inactive", "expired") and not pm.get("stopped"):
            # a scenario's token effect: this saved card stops working for good
            pm["stopped"] = fx.token
            pm["updated_at"] = now
            sb.store.put(p.name, "payment_method", pm["id"], pm, tenant)
        pay["card"] = dict(pm["card"])
        pay["payment_method_id"] = pm["id"]
        card = pm["card"]
        if pm.get("stopped") == "expired" or cardlib.expired(card["exp_month"], card["exp_year"], now):
            decline = "expired_card"
        elif pm.get("stopped") == "inactive":
            decline = "card_declined"
        else:
            decline = fx.take_decline()
            if decline is None and card.get("profile") == "recurring_decline":
                decline = "card_declined"
            if decline is None and pay["amount"] % 100 == testcards.INSUFFICIENT_FUNDS_CENTS \
                    and pay["currency"] != "jpy":
                decline = "insufficient_funds"
        if decline:
            _fail(p, tenant, pay, decline, now)
        else:
            _succeed(p, tenant, pay, now)
        _store(p, tenant, pay)
    return _result(p, pay)


def _charge_token(p, tenant, pay, tok_id, now):
    sb = p.sandbox
    fx = p.effects()
    with sb.store.lock:
        tok = sb.store.get(p.name, "token", tok_id)
        owner = sb.store.tenant_of(p.name, "token", tok_id)
        # a token made with an unmapped publishable key is usable by any tenant [ASSUMED]
        if tok is None or (owner != tenant and not owner.startswith("pk_")):
            p.reject("not_found", 404, f"No token {tok_id} exists.", param="token")
        if fx.token == "expired" and not tok["used"]:
            tok["expires_at"] = now
        elif fx.token == "inactive":
            tok["used"] = True
        if tok["used"]:
            sb.store.put(p.name, "token", tok_id, tok, owner)
            p.reject("payment_token_already_used", 400, "The token has already been used.", param="token")
        if now >= tok["expires_at"]:
            sb.store.put(p.name, "token", tok_id, tok, owner)
            p.reject("payment_token_expired", 400, "The token has expired.", param="token")
        tok["used"] = True
        sb.store.put(p.name, "token", tok_id, tok, owner)
        pay["card"] = dict(tok["card"])
        authorize(p, tenant, pay, now)
        _store(p, tenant, pay)
    return _result(p, pay)


def _result(p, pay):
    if pay["status"] == "failed":
        p.reject(pay["error_code"], 400, testcards.DECLINE_CODES.get(pay["error_code"], ("", "", "Declined"))[2],
                 transaction_id=pay["id"], request_id=pay["request_id"])
    return (202 if pay["status"] == "requires_action" else 201), pay


# -- the authorization -----------------------------------------------------------------------
def authorize(p, tenant, pay, now, *, three_ds: str | None = None) -> None:
    """Run a typed card (hosted page, token) through 3-D Secure and the decline rules.

    ``three_ds`` None means the customer has not answered a challenge yet (the HTML flow stops at
    ``requires_action`` and shows it); "pass" / "fail" / "cancel" answer it in the same call.
    """
    fx = p.effects()
    profile = pay["card"].get("profile")
    if pay["status"] != "requires_action" and (profile == "three_ds" or fx.require_3ds):
        move(p, pay, "challenge", now)
        if three_ds is None:
            return
    if pay["status"] == "requires_action":
        if three_ds is None:
            return
        if three_ds == "cancel":
            move(p, pay, "cancel", now)
            p.emit_payment(tenant, "payment.canceled", pay)
            return
        if three_ds == "fail":
            _fail(p, tenant, pay, "card_declined", now)
            return
    decline = fx.take_decline() or testcards.decline_of(profile)
    if decline:
        _fail(p, tenant, pay, decline, now)
    else:
        _succeed(p, tenant, pay, now)


def _fail(p, tenant, pay, code, now) -> None:
    move(p, pay, "fail", now)
    pay["error_code"] = code
    p.emit_payment(tenant, "payment.failed", pay)


def _succeed(p, tenant, pay, now) -> None:
    sb = p.sandbox
    pay["psp_reference"] = sb.ids.prefixed("pi_", 24, ALNUM)
    if pay["save_card"]:
        _save_card(p, tenant, pay, now)
    if pay["capture_method"] == "manual":
        move(p, pay, "authorize", now)   # no webhook for authorized; payment.succeeded fires on capture
        return
    move(p, pay, "complete", now)
    pay["amount_captured"] = pay["amount"]
    p.emit_payment(tenant, "payment.succeeded", pay)


def _save_card(p, tenant, pay, now) -> None:
    sb = p.sandbox
    with sb.store.lock:
        has_default = any(c["is_default"] for c in cards_of(p, tenant, pay["customer_id"]))
        pm = {
            "id": sb.ids.prefixed("pmi_", 24, ALNUM),
            "customer_id": pay["customer_id"],
            "connector_id": pay["connector_id"],
            "card": dict(pay["card"]),
            "status": "active",
            "blocked_reason": None,
            "is_default": not has_default,
            "stopped": None,
            "created_at": now,
            "updated_at": now,
        }
        sb.store.put(p.name, "payment_method", pm["id"], pm, tenant)
    pay["payment_method_id"] = pm["id"]
    pay["card_saved"] = True


# -- the hosted page -------------------------------------------------------------------------
def hosted_submit(p, pay: dict, outcome: str, card: dict | None, three_ds: str | None) -> dict:
    """The customer's action on the payment page; the HTML form and /_sandbox/hosted share it."""
    sb = p.sandbox
    tenant = sb.store.tenant_of(p.name, "payment", pay["request_id"])
    now = p.now(tenant)
    with sb.store.lock:
        if pay["status"] == "requires_action":
            answer = {"cancel": "cancel", "decline": "fail"}.get(outcome, "pass")
            authorize(p, tenant, pay, now, three_ds=three_ds or answer)
        elif pay["status"] != "pending":
            p.reject("invalid_status", 400, f"The payment is already {pay['status']}.")
        elif outcome == "cancel":
            move(p, pay, "cancel", now)
            p.emit_payment(tenant, "payment.canceled", pay)
        else:
            pay["card"] = card_from_input(p, card or _default_card(now), now, salt=tenant)
            if outcome == "decline":
                _fail(p, tenant, pay, "card_declined", now)
            else:
                authorize(p, tenant, pay, now, three_ds=three_ds)
        _store(p, tenant, pay)
    return pay


def _default_card(now) -> dict:
    return {"number": testcards.SUCCESS_VISA, "exp_month": 12, "exp_year": now.year + 4, "cvc": "123"}


# -- capture, void, refund -------------------------------------------------------------------
def capture(p, tenant, any_id, amount) -> tuple[dict, int]:
    sb = p.sandbox
    now = p.now(tenant)
    with sb.store.lock:
        pay = find_payment(p, tenant, any_id)
        minor = pay["amount"] if amount is None else _minor(p, amount, pay["currency"])
        if pay["status"] == "authorized" and minor > pay["amount"]:
            p.reject("invalid_amount", 400, "The capture amount exceeds the authorized amount.", param="amount")
        move(p, pay, "capture", now)
        pay["amount_captured"] = minor
        p.emit_payment(tenant, "payment.succeeded", pay, amount_minor=minor)
        _store(p, tenant, pay)
    return pay, minor


def void(p, tenant, any_id) -> dict:
    sb = p.sandbox
    now = p.now(tenant)
    with sb.store.lock:
        pay = find_payment(p, tenant, any_id)
        move(p, pay, "void", now)
        p.emit_payment(tenant, "payment.canceled", pay)
        _store(p, tenant, pay)
    return pay


def refund(p, tenant, any_id, data) -> tuple[dict, dict]:
    sb = p.sandbox
    now = p.now(tenant)
    with sb.store.lock:
        pay = find_payment(p, tenant, any_id)
        if pay["status"] not in ("completed", "partially_refunded"):
            p.reject("invalid_status", 400, f"The payment cannot be refunded in status {pay['status']}.")
        if data.get("currency") and data["currency"] != pay["currency"]:
            p.reject("validation_error", 400, "The refund currency must be the payment's currency.",
                     param="currency", details=[{"param": "currency", "message": "must match the payment"}])
        remaining = pay["amount_captured"] - pay["amount_refunded"]
        minor = remaining if data.get("amount") is None else _minor(p, data["amount"], pay["currency"])
        if minor > remaining:
            p.reject("invalid_amount", 400, "The refund amount exceeds the refundable amount.", param="amount")
        move(p, pay, "refund_full" if minor == remaining else "refund_partial", now)
        pay["amount_refunded"] += minor
        item = {"id": sb.ids.prefixed("orf_", 24, ALNUM), "amount": minor, "status": "succeeded",
                "reason": data.get("reason"), "psp_refund_id": sb.ids.prefixed("re_", 24, ALNUM),
                "created_at": now}
        pay["refunds"].append(item)
        p.emit_payment(tenant, "payment.refunded", pay)
        _store(p, tenant, pay)
    return pay, item


# -- saved cards -----------------------------------------------------------------------------
def card_action(p, tenant, pmi, event, reason=None) -> dict:
    sb = p.sandbox
    now = p.now(tenant)
    with sb.store.lock:
        pm = find_card(p, tenant, pmi)
        move_card(p, pm, event, now)
        pm["blocked_reason"] = reason if event == "block" else None
        if event == "detach" and pm["is_default"]:
            pm["is_default"] = False
            rest = [c for c in cards_of(p, tenant, pm["customer_id"]) if c["status"] == "active"]
            if rest:
                rest[0]["is_default"] = True
                sb.store.put(p.name, "payment_method", rest[0]["id"], rest[0], tenant)
        sb.store.put(p.name, "payment_method", pm["id"], pm, tenant)
    return pm


# -- tokens ----------------------------------------------------------------------------------
def create_token(p, tenant, card_input) -> dict:
    sb = p.sandbox
    now = p.now(tenant)
    card = card_from_input(p, card_input, now, salt=tenant)
    tok = {"id": sb.ids.prefixed("tok_", 24, ALNUM), "card": card, "connector_id": "conn_sandbox",
           "used": False, "created_at": now, "expires_at": now + TOKEN_LIFETIME}
    sb.store.put(p.name, "token", tok["id"], tok, tenant)
    return tok
