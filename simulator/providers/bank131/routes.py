"""Bank 131 routes: thin handlers — parse, run the machine, render.

Every API method is a POST with a JSON body. Session methods are served under both /api/v1 and
/api/v2 (the PHP SDK uses v2 by default); token and recurrent methods live on /api/v1 only.
"""
from __future__ import annotations

import string
from datetime import timedelta
from functools import partial, wraps

from flask import Blueprint, redirect, render_template, request

from ...lazy import LazyModule
from ..base import current_provider, no_auth
from ..shape import Refusal
from . import testcards, views

bp = Blueprint("bank131", __name__, template_folder="templates")
schemas = LazyModule(__package__ + ".schemas")

IDEMPOTENCY_TTL = timedelta(hours=24)


provider = partial(current_provider, "bank131")


def api_version() -> int:
    return 2 if "/api/v2/" in request.path else 1


def session_route(path: str):
    """Register a session method on both API versions."""
    def register(view):
        for version in (1, 2):
            bp.add_url_rule(f"/api/v{version}/session/{path}", endpoint=view.__name__, view_func=view,
                            methods=["POST"])
        return view
    return register


def load(schema_cls, data=None):
    p = provider()
    if data is None:
        data = p.json_body()
    if data == []:  # the PHP SDK serialises a request without fields as an empty PHP array
        data = {}
    return p.parse(schema_cls, data)


def ok(**body):
    return provider().render_json(views.ok(**body))


def session_response(session):
    return ok(session=provider().machine.render(session, api_version()))


def idempotent(view):
    """X-PARTNER-IDEMPOTENCY-KEY: a key already used by this project is refused with
    idempotency_key_already_exists (the SDK's documented answer), never processed twice. A request
    that failed releases its key so a corrected retry goes through."""
    @wraps(view)
    def wrapper():
        p = provider()
        key = request.headers.get("X-PARTNER-IDEMPOTENCY-KEY")
        if not key:
            return view()

        def used():
            return p.error("idempotency_key_already_exists", detail=f"idempotency key {key} was already used")
        return p.idempotent(key, view, ttl=IDEMPOTENCY_TTL, scope="idempotency", in_flight=used, repeat=used)
    return wrapper


def session_of(data: dict) -> dict:
    p = provider()
    return p.machine.get_session(data["session_id"], p.tenant)


# -- sessions ----------------------------------------------------------------------------------
@session_route("create")
@idempotent
def session_create():
    p = provider()
    data = load(schemas.SessionCreate)
    return session_response(p.machine.create_session(p.tenant, p.machine.draft(data, p.tenant), api_version()))


@session_route("init/payment")
@idempotent
def session_init_payment():
    p = provider()
    data = load(schemas.InitPayment)
    return session_response(p.machine.init_payment(p.tenant, p.machine.draft(data, p.tenant), api_version()))


@session_route("init/payment/sync")
@idempotent
def session_init_payment_sync():
    p = provider()
    data = load(schemas.InitPayment)
    return session_response(p.machine.init_payment(p.tenant, p.machine.draft(data, p.tenant), api_version(),
                                                   sync=True))


@session_route("start/payment")
@idempotent
def session_start_payment():
    p = provider()
    data = load(schemas.StartPayment)
    return session_response(p.machine.start_payment(p.tenant, session_of(data), p.machine.draft(data, p.tenant)))


@session_route("confirm")
@idempotent
def session_confirm():
    p = provider()
    return session_response(p.machine.confirm(p.tenant, session_of(load(schemas.SessionRef))))


@session_route("cancel")
@idempotent
def session_cancel():
    p = provider()
    return session_response(p.machine.cancel(p.tenant, session_of(load(schemas.SessionRef))))


@session_route("capture")
def session_capture():
    # Only two-stage (hold) payments are captured; the sandbox simulates single-stage card and
    # recurrent payments, so no session ever waits for capture.
    session = session_of(load(schemas.SessionRef))
    raise Refusal("session_wrong_state",
                  f"session {session['id']} is {session['status']}; no payment waits for capture")


@session_route("status")
def session_status():
    data = provider().json_body()
    if isinstance(data, dict) and "session_id" not in data and isinstance(data.get("session"), str):
        data = {**data, "session_id": data["session"]}  # the unofficial PyPI client sends `session`
    return session_response(session_of(load(schemas.SessionRef, data)))


@session_route("refund")
@idempotent
def session_refund():
    p = provider()
    data = load(schemas.SessionRef)
    return session_response(p.machine.refund(p.tenant, session_of(data), data.get("amount_details"),
                                             data.get("metadata")))


# -- tokens ------------------------------------------------------------------------------------
@bp.post("/api/v1/token")
@idempotent
def token():
    p = provider()
    data = load(schemas.TokenRequest)
    widget = data.get("acquiring_widget")
    if widget is None:
        raise Refusal("invalid_request", "only acquiring_widget is simulated")
    if "show_recurrent_checkbox" not in widget and "show_recurrent_checkbox" in data:
        widget = {**widget, "show_recurrent_checkbox": data["show_recurrent_checkbox"]}
    return ok(public_token=p.machine.issue_public_token(p.tenant, widget))


@bp.post("/api/v1/token/info")
def token_info():
    p = provider()
    data = load(schemas.TokenInfo)
    if data["type"] != "recurrent_token":
        raise Refusal("invalid_request", f"token/info with type {data['type']} is not simulated; "
                                         "use type recurrent_token")
    rec = p.machine.get_token(p.tenant, data["recurrent_token"]["token"])
    return ok(info={"type": "recurrent_token", **views.render_token(rec)})


@bp.post("/api/v1/recurrent/status")
def recurrent_status():
    p = provider()
    data = load(schemas.RecurrentRef)
    return ok(recurrent=views.render_token(p.machine.get_token(p.tenant, data["recurrent"]["token"])))


@bp.post("/api/v1/recurrent/disable")
@idempotent
def recurrent_disable():
    p = provider()
    data = load(schemas.RecurrentRef)
    return ok(recurrent=views.render_token(p.machine.disable_token(p.tenant, data["recurrent"]["token"])))


# -- hosted pages: the payment widget and the 3-D Secure page (no credentials) ---------------
def _page(template, status=200, **ctx):
    return render_template(f"bank131/{template}", **ctx), status, {"Content-Type": "text/html; charset=utf-8"}


def _widget_context(public_token, rec, session, m, error=None, form=None):
    payment = m.current_payment(session)
    return dict(public_token=public_token, widget=rec, session=session, payment=payment, error=error,
                form=form or {}, amount=(payment or session["_draft"]).get("amount_details"))


@bp.get("/widget/<public_token>")
@no_auth
def widget_page(public_token):
    m = provider().machine
    tenant, rec, session = m.widget(public_token)
    if rec is None:
        return _page("message.html", 404, title="Payment form not found",
                     message="This payment link is unknown or was reset.")
    return _page("widget.html", **_widget_context(public_token, rec, session, m))


@bp.post("/widget/<public_token>")
@no_auth
def widget_submit(public_token):
    m = provider().machine
    tenant, rec, session = m.widget(public_token)
    if rec is None:
        return _page("message.html", 404, title="Payment form not found",
                     message="This payment link is unknown or was reset.")
    form = request.form
    # ASCII whitespace only: str.strip() would also drop NBSP, ideographic spaces and the like,
    # and a number arriving with those must get the same validation error as through the API
    card = {name: form.get(name, "").strip(string.whitespace)
            for name in ("number", "expiration_month", "expiration_year", "security_code")}
    if form.get("cardholder_name"):
        card["cardholder_name"] = form["cardholder_name"]
    ticked = form.get("recurrent_consent") in ("1", "on", "true")
    p = provider()
    try:
        bank_card = p.parse(schemas.BankCard, card)
        m.widget_pay(tenant, session, rec["show_recurrent_checkbox"], bank_card, ticked)
    except Refusal as exc:
        safe = {k: v for k, v in card.items() if k not in ("number", "security_code")}
        return _page("widget.html", 400, **_widget_context(public_token, rec, session, m,
                                                           error=p.describe(exc), form=safe))
    return redirect(request.path, code=303)


@bp.get("/3ds/<payment_id>")
@no_auth
def three_ds_page(payment_id):
    m = provider().machine
    tenant, session, payment = m.find_payment(payment_id)
    if payment is None:
        return _page("message.html", 404, title="3-D Secure", message="Unknown payment.")
    return _page("three_ds.html", session=session, payment=payment)


@bp.post("/3ds/<payment_id>")
@no_auth
def three_ds_submit(payment_id):
    m = provider().machine
    tenant, session, payment = m.find_payment(payment_id)
    if payment is None:
        return _page("message.html", 404, title="3-D Secure", message="Unknown payment.")
    try:
        m.three_ds(tenant, session, payment, request.form.get("result") == "pass")
    except Refusal as exc:
        return _page("three_ds.html", 409, session=session, payment=payment, error=provider().describe(exc))
    target = _return_url(m, session, payment)
    if target:
        return redirect(target, code=303)
    return _page("three_ds.html", session=session, payment=payment)


def _return_url(m, session, payment):
    url = (payment.get("payment_options") or {}).get("return_url")
    if url:
        return url
    widget = next(iter(m.store.where("public_token", m.store.tenant_of("session", session["id"]), "session_id",
                                     session["id"], limit=1)), None)
    if widget:
        return widget.get("success_return_url" if payment["status"] == "succeeded" else "failure_return_url")
    return None


# -- POST /_sandbox/hosted/bank131/<id>: what the payer does, for CI ---------------------------
def hosted_action(p, object_id: str, action: dict):
    """`object_id`: a public token or session id (the widget waits for a card) or a payment id
    (3-D Secure waits for the payer). Same machine calls as the HTML forms."""
    m = p.machine
    tenant, rec, session = m.widget(object_id)
    payment = None
    if session is None:
        session = m.store.get("session", object_id)
        tenant = m.store.tenant_of("session", object_id) if session else None
    if session is None:
        tenant, session, payment = m.find_payment(object_id)
    if session is None:
        raise Refusal("invalid_request", f"{object_id} is not a Bank 131 public token, session or payment", status=404)
    if rec is None:
        rec = next(iter(m.store.where("public_token", tenant, "session_id", session["id"], limit=1)), None)
    payment = payment or m.current_payment(session)
    outcome = action.get("outcome", "approve")
    if session["status"] == "created":
        if outcome == "cancel":
            m.cancel(tenant, session)
        else:
            card = action.get("card") or {}
            default = testcards.SUCCESS_CARD if outcome == "approve" else testcards.DECLINE_CARD
            year, month = str(card.get("exp_year", "30")), str(card.get("exp_month", 12))
            bank_card = p.parse(schemas.BankCard, {
                "number": str(card.get("number", default)),
                # a month given as 1 means "01"; isdigit() alone would also pad "１" and "²", so
                # ASCII only: anything else reaches the schema as sent and gets its validation error
                "expiration_month": month.zfill(2) if month.isascii() and month.isdigit() else month,
                "expiration_year": year[-2:] if len(year) == 4 else year,
                "security_code": str(card.get("cvv", "123"))})
            show = bool(rec and rec["show_recurrent_checkbox"])
            m.widget_pay(tenant, session, show, bank_card, bool(action.get("recurring_consent", False)))
    elif payment is not None and payment["_state"] == "awaiting_action":
        passed = action.get("three_ds", "pass") == "pass" and outcome == "approve"
        m.three_ds(tenant, session, payment, passed)
    else:
        raise Refusal("session_wrong_state", f"session {session['id']} is {session['status']}; nothing waits "
                                             "for the payer", status=409)
    return ok(session=m.render(session))
