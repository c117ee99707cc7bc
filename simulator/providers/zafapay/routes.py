"""ZafaPay routes: thin handlers — parse, run the machine, render."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from functools import wraps
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, redirect, render_template, request

from ..base import ProviderError, public
from . import machine, schemas, testcards

bp = Blueprint("zafapay", __name__, template_folder="templates")


def provider():
    from . import ZafaPay
    return ZafaPay.current()


def _parse(schema_cls, *, allow_empty=True):
    p = provider()
    data = p.json_body(allow_empty=allow_empty)
    values, errors = schemas.load(schema_cls, data)
    if errors:
        p.validation(errors)
    return values


def idempotent(view):
    """``Idempotency-Key`` on POST: same key and body replay the stored answer [ASSUMED header]."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        p = provider()
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        if not 1 <= len(key) <= 255:
            p.reject("validation_error", 400, "Idempotency-Key must be 1 to 255 characters.",
                     param="Idempotency-Key", details=[{"param": "Idempotency-Key", "message": "invalid length"}])
        fingerprint = hashlib.sha256(request.method.encode() + b" " + request.path.encode() + b"\n"
                                     + request.get_data(cache=True)).hexdigest()
        return p.idempotent(
            key, lambda: view(*args, **kwargs), scope="idempotency", fingerprint=fingerprint,
            ttl=timedelta(hours=p.settings.get("idempotency_ttl_hours", 24)),
            in_flight=lambda: p.api_error("idempotency_key_in_use", 409,
                                          "A request with this Idempotency-Key is still in progress."),
            mismatch=lambda: p.api_error("idempotency_key_mismatch", 400,
                                         "This Idempotency-Key was used with a different request."),
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
    data = _parse(schemas.CreatePayment, allow_empty=False)
    status, pay = machine.create_payment(p, p.tenant, data)
    return p.render_json(schemas.created_view(pay, p.base_url()), status)


@bp.get("/v1/payments/<payment_id>")
def get_payment(payment_id):
    p = provider()
    return p.render_json(schemas.payment_view(machine.find_payment(p, p.tenant, payment_id)))


@bp.post("/v1/payments/<payment_id>/capture")
@idempotent
def capture(payment_id):
    p = provider()
    data = _parse(schemas.Capture)
    pay, minor = machine.capture(p, p.tenant, payment_id, data.get("amount"))
    return p.render_json({"id": pay["id"], "status": pay["status"],
                          "amount": schemas.amount_num(minor, pay["currency"])})


@bp.post("/v1/payments/<payment_id>/void")
@idempotent
def void(payment_id):
    p = provider()
    _parse(schemas.Capture)   # the body is ignored, but must be JSON when present
    pay = machine.void(p, p.tenant, payment_id)
    return p.render_json({"id": pay["id"], "status": pay["status"], "updated_at": schemas.ts(pay["updated_at"])})


@bp.post("/v1/payments/<payment_id>/refund")
@idempotent
def refund(payment_id):
    p = provider()
    data = _parse(schemas.Refund)
    pay, item = machine.refund(p, p.tenant, payment_id, data)
    return p.render_json({
        "id": item["id"], "transaction_id": pay["id"],
        "amount": schemas.amount_str(item["amount"], pay["currency"]), "currency": pay["currency"],
        "status": item["status"], "reason": item["reason"], "psp_refund_id": item["psp_refund_id"],
        "refund_fee": schemas.amount_str(0, pay["currency"]), "created_at": schemas.ts(item["created_at"])})


# -- tokens ----------------------------------------------------------------------------------
@bp.post("/v1/tokens")
@idempotent
def create_token():
    p = provider()
    data = _parse(schemas.CreateToken, allow_empty=False)
    tok = machine.create_token(p, p.tenant, data["card"])
    return p.render_json(schemas.token_view(tok), 201)


# -- saved cards -----------------------------------------------------------------------------
@bp.get("/v1/customers/<customer_id>/payment-methods")
def list_payment_methods(customer_id):
    p = provider()
    cards = machine.cards_of(p, p.tenant, customer_id)
    return p.render_json({"customer_id": customer_id, "payment_methods": [schemas.card_view(c) for c in cards]})


@bp.post("/v1/customers/payment-methods/<pmi>/block")
@idempotent
def block(pmi):
    p = provider()
    data = _parse(schemas.Block)
    pm = machine.card_action(p, p.tenant, pmi, "block", data["reason"])
    return p.render_json({"id": pm["id"], "status": pm["status"], "blocked_reason": pm["blocked_reason"],
                          "updated_at": schemas.ts(pm["updated_at"])})


@bp.post("/v1/customers/payment-methods/<pmi>/unblock")
@idempotent
def unblock(pmi):
    p = provider()
    pm = machine.card_action(p, p.tenant, pmi, "unblock")
    return p.render_json({"id": pm["id"], "status": pm["status"], "updated_at": schemas.ts(pm["updated_at"])})


@bp.post("/v1/customers/payment-methods/<pmi>/detach")
@bp.delete("/v1/customers/payment-methods/<pmi>")
@idempotent
def detach(pmi):
    p = provider()
    pm = machine.card_action(p, p.tenant, pmi, "detach")
    return p.render_json({"id": pm["id"], "status": pm["status"], "updated_at": schemas.ts(pm["updated_at"])})


# -- simulator-only control (not part of ZafaPay) --------------------------------------------
@bp.post("/_sandbox/payments/<payment_id>/chargeback")
def chargeback(payment_id):
    """Status stays as it is; only payment.chargeback is sent [ASSUMED]."""
    p = provider()
    pay = machine.find_payment(p, p.tenant, payment_id)
    if pay["status"] not in ("completed", "partially_refunded", "refunded"):
        p.reject("invalid_status", 400, f"A payment in status {pay['status']} cannot be charged back.")
    p.emit_payment(p.tenant, "payment.chargeback", pay)
    return p.render_json(schemas.payment_view(pay))


# -- the hosted payment page -----------------------------------------------------------------
def _page_payment(req_id: str, token: str | None):
    p = provider()
    pay = p.sandbox.store.get(p.name, "payment", req_id)
    if pay is None or not token or not hmac.compare_digest(str(token), pay["page_token"]):
        return p, None
    return p, pay


def _page(pay, *, mode=None, error=None, status=200, form=None):
    mode = mode or {"pending": "form", "requires_action": "challenge"}.get(pay["status"], "done")
    now = provider().now(provider().sandbox.store.tenant_of("zafapay", "payment", pay["request_id"]))
    html = render_template("zafapay/checkout.html", pay=pay, mode=mode, error=error, form=form or {},
                           amount=schemas.amount_str(pay["amount"], pay["currency"]),
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
@public
def checkout_page(req_id):
    p, pay = _page_payment(req_id, request.args.get("token"))
    if pay is None:
        return _forbidden()
    return _page(pay)


@bp.post("/checkout/<req_id>")
@public
def checkout_submit(req_id):
    p, pay = _page_payment(req_id, request.form.get("token"))
    if pay is None:
        return _forbidden()
    action = request.form.get("action", "pay")
    if action not in ("pay", "decline", "cancel"):
        return _page(pay, error="Unknown action.", status=400, form=request.form)
    card = None
    if action != "cancel":
        values, errors = schemas.load(schemas.CardInput, {
            "number": request.form.get("card_number", ""), "exp_month": request.form.get("exp_month") or None,
            "exp_year": request.form.get("exp_year") or None, "cvc": request.form.get("cvc") or None,
            "cardholder_name": request.form.get("cardholder_name") or None})
        if errors and pay["status"] == "pending":
            return _page(pay, error=f"{errors[0][0].replace('_', ' ')}: {errors[0][1]}", status=400, form=request.form)
        card = values
    outcome = {"pay": "approve"}.get(action, action)
    try:
        machine.hosted_submit(p, pay, outcome, card, None)
    except ProviderError as exc:
        return _page(pay, error=_message(exc), status=400, form=request.form)
    return _finish(p, pay)


@bp.get("/checkout/<req_id>/3ds")
@public
def challenge_page(req_id):
    p, pay = _page_payment(req_id, request.args.get("token"))
    if pay is None:
        return _forbidden()
    return _page(pay)


@bp.post("/checkout/<req_id>/3ds")
@public
def challenge_submit(req_id):
    p, pay = _page_payment(req_id, request.form.get("token"))
    if pay is None:
        return _forbidden()
    answer = request.form.get("action", "pass")
    if answer not in ("pass", "fail", "cancel"):
        return _page(pay, error="Unknown action.", status=400)
    outcome = {"pass": "approve", "fail": "decline", "cancel": "cancel"}[answer]
    try:
        machine.hosted_submit(p, pay, outcome, None, answer)
    except ProviderError as exc:
        return _page(pay, error=_message(exc), status=400)
    return _finish(p, pay)


def _message(exc: ProviderError) -> str:
    try:
        return json.loads(exc.response.get_data())["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return "The payment could not be processed."


def hosted_action(p, object_id, action):
    """POST /_sandbox/hosted/zafapay/<req_ or tx_ id>: the page's buttons without a browser."""
    sb = p.sandbox
    req_id = object_id
    if object_id.startswith("tx_"):
        alias = sb.store.get(p.name, "tx", object_id)
        req_id = alias["request_id"] if alias else None
    pay = sb.store.get(p.name, "payment", req_id) if req_id else None
    if pay is None:
        return p.api_error("not_found", 404, f"No payment {object_id} is waiting for the customer.", param="id")
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
        card, errors = schemas.load(schemas.CardInput, raw)
        if errors:
            p.validation([(f"card.{k}", m) for k, m in errors])
    outcome = action.get("outcome", "approve")
    three_ds = action.get("three_ds") or "pass"
    if outcome == "cancel":
        three_ds = "cancel"
    elif outcome == "decline" and pay["status"] == "requires_action":
        three_ds = "fail"
    machine.hosted_submit(p, pay, outcome, card, three_ds)
    return p.render_json(schemas.payment_view(pay))
