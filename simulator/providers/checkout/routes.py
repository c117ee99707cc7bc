"""Checkout.com routes: thin handlers — parse, run the machine, render."""
from __future__ import annotations

from datetime import timedelta
from functools import partial, wraps
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, redirect, render_template, request

from ...core.cards import mask
from ...core.money import to_major
from ...lazy import LazyModule
from ..base import current_provider, no_auth
from ..shape import Refusal
from . import views
from .testcards import CHALLENGE_PASSWORD, CardProfile

bp = Blueprint("checkout", __name__, template_folder="templates")
schemas = LazyModule(__package__ + ".schemas")


provider = partial(current_provider, "checkout")


def load(schema_cls) -> dict:
    """The JSON body validated; anything but an object is request_invalid, as the API answers."""
    p = provider()
    body = p.json_body()
    if not isinstance(body, dict):
        raise Refusal("validation", "request_invalid")
    return p.parse(schema_cls, body)


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
                            in_flight=lambda: p.error("in_progress"))
    return wrapper


# -- payments --------------------------------------------------------------------------------
@bp.post("/payments")
@idempotent
def request_payment():
    p = provider()
    body = load(schemas.PaymentRequestSchema)
    base = p.base_url()
    return p.machine.request_payment(p.tenant, body, base, p.effects(), lambda payment: p.render_json(
        views.created_body(payment, base, p.machine), 202 if payment["status"] == "Pending" else 201))


@bp.get("/payments")
def list_payments():
    p = provider()
    try:
        limit = int(request.args.get("limit", 10))
        skip = int(request.args.get("skip", 0))
        if not (1 <= limit <= 100 and skip >= 0):
            raise ValueError
    except ValueError:
        raise Refusal("validation", "paging_invalid") from None
    total, items = p.machine.payments(p.tenant, request.args.get("reference"), skip, limit)
    data = [views.details_body(x, p.base_url(), p.machine) for x in items]
    return p.render_json({"limit": limit, "skip": skip, "total_count": total, "data": data})


@bp.get("/payments/<payment_id>")
def get_payment(payment_id):
    p = provider()
    payment = p.machine.find_payment(p.tenant, payment_id)
    return p.render_json(views.details_body(payment, p.base_url(), p.machine, with_actions=payment_id.startswith("sid_")))


@bp.get("/payments/<payment_id>/actions")
def get_actions(payment_id):
    p = provider()
    payment = p.machine.find_payment(p.tenant, payment_id)
    return p.render_json([views.action_body(a) for a in reversed(payment["actions"])])


def _follow_up(payment_id, schema_cls, operation):
    p = provider()
    body = load(schema_cls)
    payment, action = p.machine.follow_up(p.tenant, payment_id, lambda pay: operation(p.machine, pay, body))
    return p.render_json(views.action_created(payment, action, body.get("reference"), p.base_url()), 202)


@bp.post("/payments/<payment_id>/captures")
@idempotent
def capture_payment(payment_id):
    return _follow_up(payment_id, schemas.CaptureRequestSchema, lambda m, pay, b: m.capture(
        pay, b.get("amount"), b.get("capture_type"), b.get("reference"), b.get("metadata")))


@bp.post("/payments/<payment_id>/refunds")
@idempotent
def refund_payment(payment_id):
    return _follow_up(payment_id, schemas.RefundRequestSchema, lambda m, pay, b: m.refund(
        pay, b.get("amount"), b.get("reference"), b.get("metadata")))


@bp.post("/payments/<payment_id>/cancellations")
@idempotent
def cancel_scheduled_retry(payment_id):
    # same body as a void: a reference (metadata is ignored)
    return _follow_up(payment_id, schemas.VoidRequestSchema, lambda m, pay, b: m.cancel_retry(pay, b.get("reference")))


@bp.post("/payments/<payment_id>/voids")
@idempotent
def void_payment(payment_id):
    return _follow_up(payment_id, schemas.VoidRequestSchema, lambda m, pay, b: m.void(
        pay, b.get("reference"), b.get("metadata")))


# -- tokens, customers, instruments ----------------------------------------------------------
@bp.post("/tokens")
def request_card_token():
    p = provider()
    body = load(schemas.TokenRequestSchema)
    return p.render_json(views.token_view(p.machine.create_token(p.tenant, body)), 201)


@bp.post("/customers")
def create_customer():
    p = provider()
    body = load(schemas.CustomerCreateSchema)
    return p.render_json({"id": p.machine.add_customer(p.tenant, body)["id"]}, 201)


@bp.get("/customers/<customer_id>")
def get_customer(customer_id):
    p = provider()
    return p.render_json(views.customer_view(p.machine.customer(p.tenant, customer_id), p.machine, p.tenant))


@bp.patch("/customers/<customer_id>")
def update_customer(customer_id):
    p = provider()
    body = load(schemas.CustomerUpdateSchema)
    p.machine.update_customer(p.tenant, customer_id, body)
    return Response(status=204)


@bp.delete("/customers/<customer_id>")
def delete_customer(customer_id):
    p = provider()
    p.machine.delete_customer(p.tenant, customer_id)
    return Response(status=204)


@bp.post("/instruments")
def create_instrument():
    p = provider()
    body = load(schemas.InstrumentCreateSchema)
    instrument = p.machine.create_instrument(p.tenant, body, p.effects())
    return p.render_json(views.instrument_view(instrument, p.machine, p.tenant), 201)


@bp.get("/instruments/<instrument_id>")
def get_instrument(instrument_id):
    p = provider()
    instrument = p.machine.find("instrument", instrument_id, p.tenant)
    return p.render_json(views.instrument_view(instrument, p.machine, p.tenant))


@bp.patch("/instruments/<instrument_id>")
def update_instrument(instrument_id):
    p = provider()
    body = load(schemas.InstrumentUpdateSchema)
    return p.render_json(views.instrument_updated(p.machine.update_instrument(p.tenant, instrument_id, body)))


@bp.patch("/instruments/<instrument_id>/revoke")
def revoke_instrument(instrument_id):
    p = provider()
    p.machine.revoke_instrument(p.tenant, instrument_id)
    return Response(status=204)


@bp.delete("/instruments/<instrument_id>")
def delete_instrument(instrument_id):
    p = provider()
    p.machine.delete_instrument(p.tenant, instrument_id)
    return Response(status=204)


# -- the 3DS challenge page (what the customer's browser sees) ---------------------------------
def _return_url(payment: dict) -> str | None:
    url = payment.get("success_url") if payment["status"] in ("Authorized", "Captured", "Card Verified") \
        else payment.get("failure_url")
    if not url:
        return None
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [("cko-session-id", payment["session_id"])]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _unknown_session() -> Response:
    return Response("Unknown authentication session", status=404, mimetype="text/plain")


@bp.get("/3ds/<session_id>")
@no_auth
def challenge_page(session_id):
    payment = provider().machine.awaiting_customer(session_id)
    if payment is None:
        return _unknown_session()
    profile = CardProfile(**payment["card"]["profile"])
    return render_template("checkout_3ds.html", payment=payment, session_id=payment["session_id"],
                           amount=to_major(payment["amount"], payment["currency"]),
                           card=mask(payment["card"]["bin"] + "000000" + payment["card"]["last4"]),
                           challenge=profile.three_ds_flow == "challenge", error=None)


@bp.post("/3ds/<session_id>")
@no_auth
def challenge_submit(session_id):
    p = provider()
    payment = p.machine.awaiting_customer(session_id)
    if payment is None:
        return _unknown_session()
    profile = CardProfile(**payment["card"]["profile"])
    if request.form.get("action") == "cancel":
        passed = False
    elif profile.three_ds_flow == "challenge":
        passed = request.form.get("password") == CHALLENGE_PASSWORD
    else:
        passed = True
    return _complete(p, payment, passed, browser=True)


def _complete(p, payment, passed: bool, browser: bool):
    try:
        p.machine.complete_authentication(payment, passed)
    except Refusal:
        if browser:
            return render_template("checkout_3ds_done.html", payment=payment), 409
        return p.render_json(views.not_awaiting(payment, payment["id"]), 409)
    target = _return_url(payment)
    if browser:
        if target:
            return redirect(target, 302)
        return render_template("checkout_3ds_done.html", payment=payment)
    return p.render_json(views.authentication_result(payment, target))


def hosted_action(p, object_id, action):
    """POST /_sandbox/hosted/checkout/<pay_ or sid_>: what the cardholder does on the ACS page."""
    payment = p.machine.awaiting_customer(object_id)
    if payment is None:
        return p.render_json(views.not_awaiting(None, object_id), 404)
    passed = action.get("outcome", "approve") == "approve" and action.get("three_ds", "pass") == "pass"
    return _complete(p, payment, passed, browser=False)
