"""Bank 131 routes: thin handlers — parse, run the machine, render.

Every API method is a POST with a JSON body. Session methods are served under both /api/v1 and
/api/v2 (the PHP SDK uses v2 by default); token and recurrent methods live on /api/v1 only.
"""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, redirect, render_template, request
from marshmallow import ValidationError

from ...core.idempotency import NEW
from ..base import ProviderError, public
from . import events, schemas, testcards
from .machine import Machine

bp = Blueprint("bank131", __name__, template_folder="templates")

IDEMPOTENCY_TTL = timedelta(hours=24)


def provider():
    from . import Bank131
    return Bank131.current()


def machine(p=None) -> Machine:
    return Machine(p or provider())


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
    if not isinstance(data, dict):
        p.fail("invalid_request", 400, "request body must be a JSON object")
    try:
        return schema_cls().load(data)
    except ValidationError as exc:
        p.fail("invalid_request", 400, "; ".join(schemas.flatten(exc.messages)))


def ok(**body):
    return provider().render_json({"status": "ok", **body})


def session_response(session, m: Machine):
    return ok(session=m.render(session, api_version()))


def idempotent(handler):
    """X-PARTNER-IDEMPOTENCY-KEY: a key already used by this project is refused with
    idempotency_key_already_exists (the SDK's documented answer), never processed twice. A request
    that failed releases its key so a corrected retry goes through."""
    p = provider()
    key = request.headers.get("X-PARTNER-IDEMPOTENCY-KEY")
    if not key:
        return handler()
    sb = p.sandbox
    scope = (p.name, p.tenant, "idempotency", key)
    state, _ = sb.idempotency.begin(scope, p.now(), IDEMPOTENCY_TTL)
    if state != NEW:
        p.fail("idempotency_key_already_exists", 400, f"idempotency key {key} was already used")
    try:
        response = handler()
    except ProviderError:
        sb.idempotency.abort(scope)
        raise
    except Exception:
        sb.idempotency.abort(scope)
        raise
    sb.idempotency.finish(scope, True)
    return response


# -- sessions ----------------------------------------------------------------------------------
@session_route("create")
def session_create():
    p, m = provider(), machine()
    data = load(schemas.SessionCreate)

    def run():
        return session_response(m.create_session(p.tenant, m.draft(data, p.tenant), api_version()), m)
    return idempotent(run)


@session_route("init/payment")
def session_init_payment():
    p, m = provider(), machine()
    data = load(schemas.InitPayment)

    def run():
        return session_response(m.init_payment(p.tenant, m.draft(data, p.tenant), api_version()), m)
    return idempotent(run)


@session_route("init/payment/sync")
def session_init_payment_sync():
    p, m = provider(), machine()
    data = load(schemas.InitPayment)

    def run():
        return session_response(m.init_payment(p.tenant, m.draft(data, p.tenant), api_version(), sync=True), m)
    return idempotent(run)


@session_route("start/payment")
def session_start_payment():
    p, m = provider(), machine()
    data = load(schemas.StartPayment)

    def run():
        session = m.get_session(data["session_id"], p.tenant)
        return session_response(m.start_payment(p.tenant, session, m.draft(data, p.tenant)), m)
    return idempotent(run)


@session_route("confirm")
def session_confirm():
    p, m = provider(), machine()
    data = load(schemas.SessionRef)
    return idempotent(lambda: session_response(m.confirm(p.tenant, m.get_session(data["session_id"], p.tenant)), m))


@session_route("cancel")
def session_cancel():
    p, m = provider(), machine()
    data = load(schemas.SessionRef)
    return idempotent(lambda: session_response(m.cancel(p.tenant, m.get_session(data["session_id"], p.tenant)), m))


@session_route("capture")
def session_capture():
    # Only two-stage (hold) payments are captured; the sandbox simulates single-stage card and
    # recurrent payments, so no session ever waits for capture.
    p, m = provider(), machine()
    data = load(schemas.SessionRef)
    session = m.get_session(data["session_id"], p.tenant)
    p.fail("session_wrong_state", 400, f"session {session['id']} is {session['status']}; no payment waits for capture")


@session_route("status")
def session_status():
    p, m = provider(), machine()
    data = p.json_body()
    if isinstance(data, dict) and "session_id" not in data and isinstance(data.get("session"), str):
        data = {**data, "session_id": data["session"]}  # the unofficial PyPI client sends `session`
    data = load(schemas.SessionRef, data)
    return session_response(m.get_session(data["session_id"], p.tenant), m)


@session_route("refund")
def session_refund():
    p, m = provider(), machine()
    data = load(schemas.SessionRef)

    def run():
        session = m.get_session(data["session_id"], p.tenant)
        return session_response(m.refund(p.tenant, session, data.get("amount_details"), data.get("metadata")), m)
    return idempotent(run)


# -- tokens ------------------------------------------------------------------------------------
@bp.post("/api/v1/token")
def token():
    p, m = provider(), machine()
    data = load(schemas.TokenRequest)
    widget = data.get("acquiring_widget")
    if widget is None:
        p.fail("invalid_request", 400, "only acquiring_widget is simulated")
    if "show_recurrent_checkbox" not in widget and "show_recurrent_checkbox" in data:
        widget = {**widget, "show_recurrent_checkbox": data["show_recurrent_checkbox"]}
    return idempotent(lambda: ok(public_token=m.issue_public_token(p.tenant, widget)))


@bp.post("/api/v1/token/info")
def token_info():
    p, m = provider(), machine()
    data = load(schemas.TokenInfo)
    if data["type"] != "recurrent_token":
        p.fail("invalid_request", 400, f"token/info with type {data['type']} is not simulated; "
                                       "use type recurrent_token")
    rec = m.get_token(p.tenant, data["recurrent_token"]["token"])
    return ok(info={"type": "recurrent_token", **events.render_token(rec)})


@bp.post("/api/v1/recurrent/status")
def recurrent_status():
    p, m = provider(), machine()
    data = load(schemas.RecurrentRef)
    return ok(recurrent=events.render_token(m.get_token(p.tenant, data["recurrent"]["token"])))


@bp.post("/api/v1/recurrent/disable")
def recurrent_disable():
    p, m = provider(), machine()
    data = load(schemas.RecurrentRef)
    return idempotent(lambda: ok(recurrent=events.render_token(m.disable_token(p.tenant, data["recurrent"]["token"]))))


# -- hosted pages: the payment widget and the 3-D Secure page (no credentials) ---------------
def _page(template, status=200, **ctx):
    return render_template(f"bank131/{template}", **ctx), status, {"Content-Type": "text/html; charset=utf-8"}


def _widget_context(public_token, rec, session, m, error=None, form=None):
    payment = m.current_payment(session)
    return dict(public_token=public_token, widget=rec, session=session, payment=payment, error=error,
                form=form or {}, amount=(payment or session["_draft"]).get("amount_details"))


@bp.get("/widget/<public_token>")
@public
def widget_page(public_token):
    m = machine()
    tenant, rec, session = m.widget(public_token)
    if rec is None:
        return _page("message.html", 404, title="Payment form not found",
                     message="This payment link is unknown or was reset.")
    return _page("widget.html", **_widget_context(public_token, rec, session, m))


@bp.post("/widget/<public_token>")
@public
def widget_submit(public_token):
    m = machine()
    tenant, rec, session = m.widget(public_token)
    if rec is None:
        return _page("message.html", 404, title="Payment form not found",
                     message="This payment link is unknown or was reset.")
    form = request.form
    card = {"number": form.get("number", "").strip(), "expiration_month": form.get("expiration_month", "").strip(),
            "expiration_year": form.get("expiration_year", "").strip(),
            "security_code": form.get("security_code", "").strip()}
    if form.get("cardholder_name"):
        card["cardholder_name"] = form["cardholder_name"]
    ticked = form.get("recurrent_consent") in ("1", "on", "true")
    try:
        bank_card = schemas.BankCard().load(card)
        m.widget_pay(tenant, session, rec["show_recurrent_checkbox"], bank_card, ticked)
    except ValidationError as exc:
        safe = {k: v for k, v in card.items() if k not in ("number", "security_code")}
        return _page("widget.html", 400, **_widget_context(public_token, rec, session, m,
                                                           error="; ".join(schemas.flatten(exc.messages)), form=safe))
    except ProviderError as exc:
        return _page("widget.html", 400, **_widget_context(public_token, rec, session, m,
                                                           error=_description(exc)))
    return redirect(request.path, code=303)


@bp.get("/3ds/<payment_id>")
@public
def three_ds_page(payment_id):
    m = machine()
    tenant, session, payment = m.find_payment(payment_id)
    if payment is None:
        return _page("message.html", 404, title="3-D Secure", message="Unknown payment.")
    return _page("three_ds.html", session=session, payment=payment)


@bp.post("/3ds/<payment_id>")
@public
def three_ds_submit(payment_id):
    m = machine()
    tenant, session, payment = m.find_payment(payment_id)
    if payment is None:
        return _page("message.html", 404, title="3-D Secure", message="Unknown payment.")
    try:
        m.three_ds(tenant, session, payment, request.form.get("result") == "pass")
    except ProviderError as exc:
        return _page("three_ds.html", 409, session=session, payment=payment, error=_description(exc))
    target = _return_url(m, session, payment)
    if target:
        return redirect(target, code=303)
    return _page("three_ds.html", session=session, payment=payment)


def _return_url(m: Machine, session, payment):
    url = (payment.get("payment_options") or {}).get("return_url")
    if url:
        return url
    widget = next((w for w in m.store.find("bank131", "public_token", m.store.tenant_of("bank131", "session", session["id"]),
                                            lambda w: w["session_id"] == session["id"])), None)
    if widget:
        return widget.get("success_return_url" if payment["status"] == "succeeded" else "failure_return_url")
    return None


def _description(exc: ProviderError) -> str:
    import json
    try:
        return json.loads(exc.response.get_data())["error"]["description"]
    except (ValueError, KeyError, TypeError):
        return "the payment could not be processed"


# -- POST /_sandbox/hosted/bank131/<id>: what the payer does, for CI ---------------------------
def hosted_action(p, object_id: str, action: dict):
    """`object_id`: a public token or session id (the widget waits for a card) or a payment id
    (3-D Secure waits for the payer). Same machine calls as the HTML forms."""
    m = Machine(p)
    tenant, rec, session = m.widget(object_id)
    payment = None
    if session is None:
        session = m.store.get("bank131", "session", object_id)
        tenant = m.store.tenant_of("bank131", "session", object_id) if session else None
    if session is None:
        tenant, session, payment = m.find_payment(object_id)
    if session is None:
        return p.error("invalid_request", 404, f"{object_id} is not a Bank 131 public token, session or payment")
    if rec is None:
        rec = next(iter(m.store.find("bank131", "public_token", tenant, lambda w: w["session_id"] == session["id"])),
                   None)
    payment = payment or m.current_payment(session)
    outcome = action.get("outcome", "approve")
    try:
        if session["status"] == "created":
            if outcome == "cancel":
                m.cancel(tenant, session)
            else:
                card = action.get("card") or {}
                default = testcards.SUCCESS_CARD if outcome == "approve" else testcards.DECLINE_CARD
                year = str(card.get("exp_year", "30"))
                bank_card = schemas.BankCard().load({
                    "number": str(card.get("number", default)),
                    "expiration_month": f"{int(card.get('exp_month', 12)):02d}"
                    if str(card.get("exp_month", 12)).isdigit() else str(card.get("exp_month")),
                    "expiration_year": year[-2:] if len(year) == 4 else year,
                    "security_code": str(card.get("cvv", "123"))})
                show = bool(rec and rec["show_recurrent_checkbox"])
                m.widget_pay(tenant, session, show, bank_card, bool(action.get("recurring_consent", False)))
        elif payment is not None and payment["_state"] == "awaiting_action":
            passed = action.get("three_ds", "pass") == "pass" and outcome == "approve"
            m.three_ds(tenant, session, payment, passed)
        else:
            p.fail("session_wrong_state", 409, f"session {session['id']} is {session['status']}; nothing waits "
                                               "for the payer")
    except ValidationError as exc:
        return p.error("invalid_request", 400, "; ".join(schemas.flatten(exc.messages)))
    except ProviderError as exc:
        return exc.response
    return p.render_json({"status": "ok", "session": m.render(session)})
