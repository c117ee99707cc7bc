"""ZafaPay routes: thin handlers — parse, run the machine, render."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from functools import partial, wraps
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, redirect, render_template, request

from ...lazy import LazyModule
from ..base import current_provider, no_auth
from ..shape import Refusal
from . import testcards, views

bp = Blueprint("zafapay", __name__, template_folder="templates")
schemas = LazyModule(__package__ + ".schemas")


provider = partial(current_provider, "zafapay")


def idempotent(view):
    """``Idempotency-Key`` on POST: same key and body replay the stored answer [ASSUMED header]."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        p = provider()
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        if not 1 <= len(key) <= 255:
            raise Refusal("validation_error", "Idempotency-Key must be 1 to 255 characters.", param="Idempotency-Key",
                          details=[{"param": "Idempotency-Key", "message": "invalid length"}])
        fingerprint = hashlib.sha256(request.method.encode() + b" " + request.path.encode() + b"\n"
                                     + request.get_data(cache=True)).hexdigest()
        return p.idempotent(
            key, lambda: view(*args, **kwargs), scope="idempotency", fingerprint=fingerprint,
            ttl=timedelta(hours=p.settings.get("idempotency_ttl_hours", 24)),
            in_flight=lambda: p.error("idempotency_key_in_use"),
            mismatch=lambda: p.error("idempotency_key_mismatch"),
            # declines are remembered too, so a retry never charges twice; refusals before anything
            # happened are not, so a corrected retry with the same key is processed
            remember=lambda r: r.status_code < 400 or _is_payment_error(r),
            replay_headers={"Idempotent-Replayed": "true"})
    return wrapper


def _is_payment_error(response) -> bool:
    try:
        return json.loads(response.get_data())["error"]["type"] == "payment_error"
    except (ValueError, KeyError, TypeError):
        return False


# -- payments --------------------------------------------------------------------------------
@bp.post("/v1/payments")
@idempotent
def create_payment():
    p = provider()
    data = p.parse(schemas.CreatePayment, allow_empty=False)
    status, pay = p.machine.create_payment(p.tenant, data)
    return p.render_json(views.created_view(pay, p.base_url()), status)


@bp.get("/v1/payments/<payment_id>")
def get_payment(payment_id):
    p = provider()
    return p.render_json(views.payment_view(p.machine.find_payment(p.tenant, payment_id)))


@bp.post("/v1/payments/<payment_id>/capture")
@idempotent
def capture(payment_id):
    p = provider()
    data = p.parse(schemas.Capture)
    return p.render_json(views.capture_view(p.machine.capture(p.tenant, payment_id, data.get("amount"))))


@bp.post("/v1/payments/<payment_id>/void")
@idempotent
def void(payment_id):
    p = provider()
    p.parse(schemas.Capture)   # the body is ignored, but must be JSON when present
    return p.render_json(views.status_view(p.machine.void(p.tenant, payment_id)))


@bp.post("/v1/payments/<payment_id>/refund")
@idempotent
def refund(payment_id):
    p = provider()
    data = p.parse(schemas.Refund)
    return p.render_json(views.refund_created_view(*p.machine.refund(p.tenant, payment_id, data)))


# -- tokens ----------------------------------------------------------------------------------
@bp.post("/v1/tokens")
@idempotent
def create_token():
    p = provider()
    data = p.parse(schemas.CreateToken, allow_empty=False)
    return p.render_json(views.token_view(p.machine.create_token(p.tenant, data["card"])), 201)


# -- saved cards -----------------------------------------------------------------------------
@bp.get("/v1/customers/<customer_id>/payment-methods")
def list_payment_methods(customer_id):
    p = provider()
    return p.render_json(views.customer_cards_view(customer_id, p.machine.cards_of(p.tenant, customer_id)))


@bp.post("/v1/customers/payment-methods/<pmi>/block")
@idempotent
def block(pmi):
    p = provider()
    data = p.parse(schemas.Block)
    return p.render_json(views.blocked_view(p.machine.card_action(p.tenant, pmi, "block", data["reason"])))


@bp.post("/v1/customers/payment-methods/<pmi>/unblock")
@idempotent
def unblock(pmi):
    p = provider()
    return p.render_json(views.status_view(p.machine.card_action(p.tenant, pmi, "unblock")))


@bp.post("/v1/customers/payment-methods/<pmi>/detach")
@bp.delete("/v1/customers/payment-methods/<pmi>")
@idempotent
def detach(pmi):
    p = provider()
    return p.render_json(views.status_view(p.machine.card_action(p.tenant, pmi, "detach")))


# -- simulator-only control (not part of ZafaPay) --------------------------------------------
@bp.post("/_sandbox/payments/<payment_id>/chargeback")
def chargeback(payment_id):
    """Status stays as it is; only payment.chargeback is sent [ASSUMED]."""
    p = provider()
    pay = p.machine.find_payment(p.tenant, payment_id)
    if pay["status"] not in ("completed", "partially_refunded", "refunded"):
        raise Refusal("invalid_status", f"A payment in status {pay['status']} cannot be charged back.")
    p.machine.emit(p.tenant, "payment.chargeback", pay)
    return p.render_json(views.payment_view(pay))


# -- the hosted payment page -----------------------------------------------------------------
def _page_payment(req_id: str, token: str | None):
    p = provider()
    pay = p.machine.payment(None, req_id)
    if pay is None or not token or not hmac.compare_digest(str(token), pay["page_token"]):
        return p, None
    return p, pay


def _page(pay, *, mode=None, error=None, status=200, form=None):
    mode = mode or {"pending": "form", "requires_action": "challenge"}.get(pay["status"], "done")
    p = provider()
    now = p.now(p.store.tenant_of("payment", pay["request_id"]))
    if form is not None:
        # what the customer typed comes back, but for the card number and the CVC: a page never
        # shows more of a card than its first six and last four digits; they are typed again
        form = {**form, "card_number": "", "cvc": ""}
    html = render_template("zafapay/checkout.html", pay=pay, mode=mode, error=error, form=form or {},
                           amount=views.amount_str(pay["amount"], pay["currency"]),
                           default_year=now.year + 4, test_card=testcards.SUCCESS_VISA)
    return Response(html, status=status, mimetype="text/html")


def _forbidden():
    return Response(render_template("zafapay/checkout.html", pay=None, mode="forbidden", error=None, form={}),
                    status=403, mimetype="text/html")


def _finish(p, pay):
    """After the customer's last step: the merchant's redirect URL if there is one, else the page."""
    if pay["status"] in ("pending", "requires_action"):
        return _page(pay)
    outcome = "succeeded" if pay["status"] in ("completed", "authorized") else "failed"
    target = pay.get("return_url") or p.settings.get(f"{'success' if outcome == 'succeeded' else 'failure'}_redirect_url")
    if not target:
        return _page(pay)
    parts = urlsplit(target)
    query = parts.query + ("&" if parts.query else "") + urlencode({"status": outcome, "id": pay["request_id"]})
    return redirect(urlunsplit(parts._replace(query=query)), code=302)


@bp.get("/checkout/<req_id>")
@no_auth
def checkout_page(req_id):
    p, pay = _page_payment(req_id, request.args.get("token"))
    if pay is None:
        return _forbidden()
    return _page(pay)


@bp.post("/checkout/<req_id>")
@no_auth
def checkout_submit(req_id):
    p, pay = _page_payment(req_id, request.form.get("token"))
    if pay is None:
        return _forbidden()
    action = request.form.get("action", "pay")
    if action not in ("pay", "decline", "cancel"):
        return _page(pay, error="Unknown action.", status=400, form=request.form)
    if error := p.machine.step_refused(pay, "card"):   # before the card's own errors
        return _page(pay, error=error, status=400)
    card = None
    if action != "cancel":
        try:
            card = p.parse(schemas.CardInput, {
                "number": request.form.get("card_number", ""), "exp_month": request.form.get("exp_month") or None,
                "exp_year": request.form.get("exp_year") or None, "cvc": request.form.get("cvc") or None,
                "cardholder_name": request.form.get("cardholder_name") or None})
        except Refusal as exc:
            path, message = exc.detail[0]
            return _page(pay, error=f"{path.replace('_', ' ')}: {message}", status=400, form=request.form)
    outcome = {"pay": "approve"}.get(action, action)
    try:
        p.machine.hosted_submit(pay, outcome, card, None, step="card")
    except Refusal as exc:
        return _page(pay, error=p.describe(exc), status=400, form=request.form)
    return _finish(p, pay)


@bp.get("/checkout/<req_id>/3ds")
@no_auth
def challenge_page(req_id):
    p, pay = _page_payment(req_id, request.args.get("token"))
    if pay is None:
        return _forbidden()
    return _page(pay)


@bp.post("/checkout/<req_id>/3ds")
@no_auth
def challenge_submit(req_id):
    p, pay = _page_payment(req_id, request.form.get("token"))
    if pay is None:
        return _forbidden()
    answer = request.form.get("action", "pass")
    if answer not in ("pass", "fail", "cancel"):
        return _page(pay, error="Unknown action.", status=400)
    outcome = {"pass": "approve", "fail": "decline", "cancel": "cancel"}[answer]
    try:
        p.machine.hosted_submit(pay, outcome, None, answer, step="challenge")
    except Refusal as exc:
        return _page(pay, error=p.describe(exc), status=400)
    return _finish(p, pay)


def hosted_action(p, object_id, action):
    """POST /_sandbox/hosted/zafapay/<req_ or tx_ id>: the page's buttons without a browser."""
    pay = p.machine.payment(None, object_id)
    if pay is None:
        raise Refusal("unknown_object", f"No payment {object_id} is waiting for the customer.", param="id")
    card = None
    if action.get("card") is not None:
        raw = dict(action["card"])
        if "cvv" in raw and "cvc" not in raw:
            raw["cvc"] = raw.pop("cvv")
        raw.pop("cvv", None)
        if raw.get("cvc") is not None:
            raw["cvc"] = str(raw["cvc"])
        if raw.get("number") is not None:
            raw["number"] = str(raw["number"])
        try:
            card = p.parse(schemas.CardInput, raw)
        except Refusal as exc:
            raise Refusal("validation", [(f"card.{k}", m) for k, m in exc.detail]) from None
    outcome = action.get("outcome", "approve")
    three_ds = action.get("three_ds") or "pass"
    if outcome == "cancel":
        three_ds = "cancel"
    elif outcome == "decline" and pay["status"] == "requires_action":
        three_ds = "fail"
    p.machine.hosted_submit(pay, outcome, card, three_ds)
    return p.render_json(views.payment_view(pay))
