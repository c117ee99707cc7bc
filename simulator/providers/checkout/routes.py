"""Checkout.com routes: thin handlers — parse, run the machine under the store lock, render."""
from __future__ import annotations

from datetime import timedelta
from functools import wraps
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

from flask import Blueprint, Response, redirect, render_template, request
from marshmallow import ValidationError

from ...core.cards import mask
from ..base import public
from . import events
from .machine import Refusal
from .schemas import (CaptureRequestSchema, CustomerCreateSchema, CustomerUpdateSchema,
                      InstrumentCreateSchema, InstrumentUpdateSchema, PaymentRequestSchema, RefundRequestSchema,
                      TokenRequestSchema, VoidRequestSchema, error_codes)

bp = Blueprint("checkout", __name__, template_folder="templates")


def provider():
    from . import Checkout
    return Checkout.current()


def refused(p, exc: Refusal) -> Response:
    if exc.kind == "validation":
        return p.error("validation", 422, exc.codes)
    return p.error(exc.kind, 403 if exc.kind == "forbidden" else 404)


def load(p, schema, partial=False):
    body = p.json_body()
    try:
        return schema.load(body, partial=partial)
    except ValidationError as exc:
        p.fail("validation", 422, error_codes(exc.messages))


def idempotent(view):
    """Cko-Idempotency-Key: the first processed answer is replayed for the same key, whatever
    the body; a duplicate still in flight gets 429; a refused request stores nothing."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get("Cko-Idempotency-Key")
        if not key:
            return view(*args, **kwargs)
        p = provider()
        return p.idempotent(key, lambda: view(*args, **kwargs),
                            ttl=timedelta(hours=float(p.settings.get("idempotency_ttl_hours", 24))),
                            in_flight=lambda: p.error("too_many_requests", 429, ["request_in_progress"]))
    return wrapper


def find_payment(p, payment_id: str) -> dict:
    store = p.sandbox.store
    if payment_id.startswith("sid_"):
        session = store.get("checkout", "session", payment_id, p.tenant)
        payment_id = session["payment_id"] if session else ""
    payment = store.get("checkout", "payment", payment_id, p.tenant) if payment_id else None
    if payment is None:
        p.fail("not_found", 404)
    return payment


# -- payments --------------------------------------------------------------------------------
@bp.post("/payments")
@idempotent
def request_payment():
    p = provider()
    body = load(p, PaymentRequestSchema())
    with p.sandbox.store.lock:
        try:
            payment = p.machine.request_payment(p.tenant, body, p.base_url(), p.effects())
        except Refusal as exc:
            return refused(p, exc)
        answer = events.created_body(payment, p.base_url(), p.machine, p.sandbox.store)
        p.machine.auto_capture(payment)
    return p.render_json(answer, 202 if payment["status"] == "Pending" else 201)


@bp.get("/payments")
def list_payments():
    p = provider()
    try:
        limit = int(request.args.get("limit", 10))
        skip = int(request.args.get("skip", 0))
        if not (1 <= limit <= 100 and skip >= 0):
            raise ValueError
    except ValueError:
        return p.error("validation", 422, ["paging_invalid"])
    reference = request.args.get("reference")
    items = [x for x in p.sandbox.store.list("checkout", "payment", p.tenant)
             if reference is None or x.get("reference") == reference]
    items.reverse()
    data = [events.details_body(x, p.base_url(), p.machine, p.sandbox.store) for x in items[skip:skip + limit]]
    return p.render_json({"limit": limit, "skip": skip, "total_count": len(items), "data": data})


@bp.get("/payments/<payment_id>")
def get_payment(payment_id):
    p = provider()
    payment = find_payment(p, payment_id)
    return p.render_json(events.details_body(payment, p.base_url(), p.machine, p.sandbox.store,
                                             with_actions=payment_id.startswith("sid_")))


@bp.get("/payments/<payment_id>/actions")
def get_actions(payment_id):
    p = provider()
    payment = find_payment(p, payment_id)
    return p.render_json([events.action_body(a) for a in reversed(payment["actions"])])


def _follow_up(payment_id, schema, operation):
    p = provider()
    body = load(p, schema)
    with p.sandbox.store.lock:
        payment = find_payment(p, payment_id)
        try:
            action = operation(p.machine, payment, body)
        except Refusal as exc:
            return refused(p, exc)
    answer = {"action_id": action["id"], "reference": body.get("reference"),
              "_links": {"payment": {"href": f"{p.base_url()}/payments/{payment['id']}"}}}
    return p.render_json(answer, 202)


@bp.post("/payments/<payment_id>/captures")
@idempotent
def capture_payment(payment_id):
    return _follow_up(payment_id, CaptureRequestSchema(), lambda m, pay, b: m.capture(
        pay, b.get("amount"), b.get("capture_type"), b.get("reference"), b.get("metadata")))


@bp.post("/payments/<payment_id>/refunds")
@idempotent
def refund_payment(payment_id):
    return _follow_up(payment_id, RefundRequestSchema(), lambda m, pay, b: m.refund(
        pay, b.get("amount"), b.get("reference"), b.get("metadata")))


@bp.post("/payments/<payment_id>/cancellations")
@idempotent
def cancel_scheduled_retry(payment_id):
    # same body as a void: a reference (metadata is ignored)
    return _follow_up(payment_id, VoidRequestSchema(), lambda m, pay, b: m.cancel_retry(
        pay, b.get("reference")))


@bp.post("/payments/<payment_id>/voids")
@idempotent
def void_payment(payment_id):
    return _follow_up(payment_id, VoidRequestSchema(), lambda m, pay, b: m.void(
        pay, b.get("reference"), b.get("metadata")))


# -- tokens, customers, instruments ----------------------------------------------------------
@bp.post("/tokens")
def request_card_token():
    p = provider()
    body = load(p, TokenRequestSchema())
    with p.sandbox.store.lock:
        try:
            token = p.machine.create_token(p.tenant, body)
        except Refusal as exc:
            return refused(p, exc)
    from ...core.clock import iso_z
    from .machine import Card
    card = Card.from_record(token, billing_address=token.get("billing_address"), phone=token.get("phone")).public()
    answer = {"type": "card", "token": token["id"], "expires_on": iso_z(token["expires_on"], 7),
              **{k: card[k] for k in ("expiry_month", "expiry_year", "scheme", "last4", "bin", "card_type",
                                      "card_category", "issuer", "issuer_country", "product_id", "product_type")}}
    answer.update({k: card[k] for k in ("billing_address", "phone", "name") if k in card})
    return p.render_json(answer, 201)


def _customer_view(p, c) -> dict:
    store = p.sandbox.store
    out = {"id": c["id"], "email": c["email"]}
    for key in ("name", "phone"):
        if c.get(key):
            out[key] = c[key]
    out["metadata"] = c.get("metadata") or {}
    if c.get("default"):
        out["default"] = c["default"]
    out["instruments"] = [_instrument_view(p, i) for i in
                          (store.get("checkout", "instrument", x, p.tenant) for x in c["instruments"]) if i]
    return out


def _instrument_view(p, inst) -> dict:
    from .machine import Card
    card = Card.from_record(inst).public()
    out = {"id": inst["id"], "type": "card", "fingerprint": inst["fingerprint"],
           "expiry_month": inst["expiry_month"], "expiry_year": inst["expiry_year"]}
    if inst.get("name"):
        out["name"] = inst["name"]
    out.update({k: card[k] for k in ("scheme", "last4", "bin", "card_type", "card_category", "issuer",
                                     "issuer_country", "product_id", "product_type")})
    if inst.get("account_holder"):
        out["account_holder"] = inst["account_holder"]
    if inst.get("customer_id"):
        c = p.sandbox.store.get("checkout", "customer", inst["customer_id"], p.tenant)
        if c:
            out["customer"] = {"id": c["id"], "email": c["email"], "default": c.get("default") == inst["id"]}
            if c.get("name"):
                out["customer"]["name"] = c["name"]
    return out


def _find(p, kind, object_id):
    obj = p.sandbox.store.get("checkout", kind, object_id, p.tenant)
    if obj is None:
        p.fail("not_found", 404)
    return obj


@bp.post("/customers")
def create_customer():
    p = provider()
    body = load(p, CustomerCreateSchema())
    with p.sandbox.store.lock:
        if body.get("default") and p.sandbox.store.get("checkout", "instrument", body["default"], p.tenant) is None:
            return p.error("validation", 422, ["instrument_not_found"])
        customer = p.machine.create_customer(p.tenant, body)
        if body.get("default"):
            inst = p.sandbox.store.get("checkout", "instrument", body["default"], p.tenant)
            p.machine.attach_instrument(p.tenant, customer, inst)
    return p.render_json({"id": customer["id"]}, 201)


@bp.get("/customers/<customer_id>")
def get_customer(customer_id):
    p = provider()
    store = p.sandbox.store
    customer = store.get("checkout", "customer", customer_id, p.tenant)
    if customer is None and "@" in customer_id:
        customer = next(store.find("checkout", "customer", p.tenant,
                                   lambda c: c["email"].lower() == customer_id.lower()), None)
    if customer is None:
        p.fail("not_found", 404)
    return p.render_json(_customer_view(p, customer))


@bp.patch("/customers/<customer_id>")
def update_customer(customer_id):
    p = provider()
    body = load(p, CustomerUpdateSchema())
    with p.sandbox.store.lock:
        customer = _find(p, "customer", customer_id)
        if body.get("default"):
            inst = p.sandbox.store.get("checkout", "instrument", body["default"], p.tenant)
            if inst is None:
                return p.error("validation", 422, ["instrument_not_found"])
            p.machine.attach_instrument(p.tenant, customer, inst)
        for key in ("email", "name", "phone", "metadata"):
            if key in body:
                customer[key] = body[key]
        p.sandbox.store.put("checkout", "customer", customer_id, customer, p.tenant)
    return Response(status=204)


@bp.delete("/customers/<customer_id>")
def delete_customer(customer_id):
    p = provider()
    with p.sandbox.store.lock:
        _find(p, "customer", customer_id)
        p.sandbox.store.delete("checkout", "customer", customer_id)
    return Response(status=204)


@bp.post("/instruments")
def create_instrument():
    p = provider()
    body = load(p, InstrumentCreateSchema())
    sb = p.sandbox
    with sb.store.lock:
        now = p.now()
        from .machine import Card
        try:
            if body["type"] == "token":
                card = p.machine.resolve_source(p.tenant, {"type": "token", "token": body["token"]}, now, p.effects())
            else:
                from ...core.cards import expired
                if expired(body["expiry_month"], body["expiry_year"], now):
                    return p.error("validation", 422, ["card_expired"])
                card = Card.from_number(body["number"], body["expiry_month"], body["expiry_year"], name=body.get("name"))
            customer = None
            if body.get("customer"):
                bc = body["customer"]
                customer = p.machine.customer_for_payment(p.tenant, bc) if (bc.get("id") or bc.get("email")) else None
        except Refusal as exc:
            return refused(p, exc)
        instrument = p.machine.store_instrument(p.tenant, card, {"id": None, "merchant_initiated": True})
        if body.get("account_holder"):
            instrument["account_holder"] = body["account_holder"]
        p.machine.attach_instrument(p.tenant, customer, instrument,
                                    make_default=bool((body.get("customer") or {}).get("default")))
        sb.store.put("checkout", "instrument", instrument["id"], instrument, p.tenant)
        answer = _instrument_view(p, instrument)
    return p.render_json(answer, 201)


@bp.get("/instruments/<instrument_id>")
def get_instrument(instrument_id):
    p = provider()
    return p.render_json(_instrument_view(p, _find(p, "instrument", instrument_id)))


@bp.patch("/instruments/<instrument_id>")
def update_instrument(instrument_id):
    p = provider()
    body = load(p, InstrumentUpdateSchema())
    with p.sandbox.store.lock:
        inst = _find(p, "instrument", instrument_id)
        for key in ("expiry_month", "expiry_year", "name", "account_holder"):
            if key in body:
                inst[key] = body[key]
        if inst.get("state") == "expired" and ("expiry_month" in body or "expiry_year" in body):
            inst["state"] = "active"  # the card was renewed: updated expiry makes it usable again
        p.sandbox.store.put("checkout", "instrument", instrument_id, inst, p.tenant)
    return p.render_json({"type": "card", "fingerprint": inst["fingerprint"]})


@bp.patch("/instruments/<instrument_id>/revoke")
def revoke_instrument(instrument_id):
    p = provider()
    with p.sandbox.store.lock:
        inst = _find(p, "instrument", instrument_id)
        inst["state"] = "inactive"
        p.sandbox.store.put("checkout", "instrument", instrument_id, inst, p.tenant)
    return Response(status=204)


@bp.delete("/instruments/<instrument_id>")
def delete_instrument(instrument_id):
    p = provider()
    with p.sandbox.store.lock:
        _find(p, "instrument", instrument_id)
        p.sandbox.store.delete("checkout", "instrument", instrument_id)
    return Response(status=204)


# -- the 3DS challenge page (what the customer's browser sees) ---------------------------------
def _payment_for_session(p, session_id):
    store = p.sandbox.store
    if session_id.startswith("pay_"):
        return store.get("checkout", "payment", session_id)
    session = store.get("checkout", "session", session_id)
    return store.get("checkout", "payment", session["payment_id"]) if session else None


def _return_url(payment: dict) -> str | None:
    url = payment.get("success_url") if payment["status"] in ("Authorized", "Captured", "Card Verified") \
        else payment.get("failure_url")
    if not url:
        return None
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [("cko-session-id", payment["session_id"])]
    return urlunsplit(parts._replace(query=urlencode(query)))


@bp.get("/3ds/<session_id>")
@public
def challenge_page(session_id):
    p = provider()
    payment = _payment_for_session(p, session_id)
    if payment is None:
        return Response("Unknown authentication session", status=404, mimetype="text/plain")
    from ...core.money import to_major
    from .testcards import CardProfile
    profile = CardProfile(**payment["card"]["profile"])
    return render_template("checkout_3ds.html", payment=payment, session_id=payment["session_id"],
                           amount=to_major(payment["amount"], payment["currency"]),
                           card=mask(payment["card"]["bin"] + "000000" + payment["card"]["last4"]),
                           challenge=profile.three_ds_flow == "challenge", error=None)


@bp.post("/3ds/<session_id>")
@public
def challenge_submit(session_id):
    p = provider()
    payment = _payment_for_session(p, session_id)
    if payment is None:
        return Response("Unknown authentication session", status=404, mimetype="text/plain")
    from .testcards import CHALLENGE_PASSWORD, CardProfile
    profile = CardProfile(**payment["card"]["profile"])
    if request.form.get("action") == "cancel":
        passed = False
    elif profile.three_ds_flow == "challenge":
        passed = request.form.get("password") == CHALLENGE_PASSWORD
    else:
        passed = True
    return _complete(p, payment, passed, browser=True)


def _complete(p, payment, passed: bool, browser: bool):
    with p.sandbox.store.lock:
        try:
            p.machine.complete_authentication(payment, passed)
        except Refusal:
            if browser:
                return render_template("checkout_3ds_done.html", payment=payment), 409
            return p.render_json({"error": "payment is not waiting for authentication",
                                  "status": payment["status"]}, 409)
    target = _return_url(payment)
    if browser:
        if target:
            return redirect(target, 302)
        return render_template("checkout_3ds_done.html", payment=payment)
    return p.render_json({"id": payment["id"], "status": payment["status"], "redirect": target})


def hosted_action(p, object_id, action):
    """POST /_sandbox/hosted/checkout/<pay_ or sid_>: what the cardholder does on the ACS page."""
    payment = _payment_for_session(p, object_id)
    if payment is None:
        return p.render_json({"error": f"no payment waiting for authentication: {object_id}"}, 404)
    passed = action.get("outcome", "approve") == "approve" and action.get("three_ds", "pass") == "pass"
    return _complete(p, payment, passed, browser=False)
