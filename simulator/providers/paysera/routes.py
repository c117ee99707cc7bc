"""Paysera Checkout routes: thin handlers — parse, run the machine, render."""
from __future__ import annotations

from functools import partial

from flask import Blueprint, redirect, render_template, request

from ...lazy import LazyModule
from ..base import current_provider, no_auth
from ..shape import Refusal
from . import testcards, views

bp = Blueprint("paysera", __name__, template_folder="templates")
schemas = LazyModule(__package__ + ".schemas")

CHECKOUT = "/checkout/rest/v1"
NOTIFICATION = "/notification/rest/v1"
PR_STATUSES = ("new", "authorized", "captured", "canceled")


provider = partial(current_provider, "paysera")


def list_arguments(statuses) -> tuple[int, int, str]:
    """A list's limit, offset and order_direction, every argument checked (status against
    ``statuses``); the problems refused together."""
    args = request.args
    errors = []

    def int_arg(name, default, low, high):
        raw = args.get(name)
        if raw is None:
            return default
        # the length first: int() refuses a digit run past 4300 with a ValueError
        if (not (raw.isascii() and raw.isdigit()) or len(raw.lstrip("0")) > len(str(high))
                or not low <= int(raw) <= high):
            errors.append((name, f"{name} must be an integer between {low} and {high}"))
            return default
        return int(raw)

    limit = int_arg("limit", 20, 1, 200)
    offset = int_arg("offset", 0, 0, 10 ** 9)
    direction = args.get("order_direction", "desc")
    if direction not in ("asc", "desc"):
        errors.append(("order_direction", "order_direction must be asc or desc"))
    status = args.get("status")
    if status is not None and status not in statuses:
        errors.append(("status", f"status must be one of: {', '.join(statuses)}"))
    if errors:
        raise Refusal("validation", errors)
    return limit, offset, direction


def paginate(p, kind: str, *, statuses) -> tuple[list[dict], dict]:
    """Paysera's list envelope: {items, _metadata}; newest first unless order_direction=asc."""
    limit, offset, direction = list_arguments(statuses)
    args = request.args
    # the notification list has always taken the payment-request filters too, and a notification
    # has no business_id or method_key, so either one selects nothing there: no index, no match
    filters = {name: args[name] for name in ("status", "business_id", "method_key") if args.get(name) is not None}
    total, page = p.machine.listing(kind, p.tenant, filters, offset, limit, direction == "desc",
                                    args.get("after"), args.get("before"))
    meta = {"total": total, "offset": offset, "limit": limit, "order_by": args.get("order_by", "createdAt"),
            "order_direction": direction, "has_next": offset + limit < total, "has_previous": offset > 0}
    if page:
        meta["cursors"] = {"after": page[-1]["id"], "before": page[0]["id"]}
    return page, meta


# -- Checkout API ------------------------------------------------------------------------------
@bp.post(f"{CHECKOUT}/payment-requests")
def create_payment_request():
    p = provider()
    data = p.parse(schemas.PaymentRequestCreate, allow_empty=False)
    pr = p.machine.create(p.tenant, data, p.base_url())
    return p.render_json(views.payment_request(pr))


@bp.get(f"{CHECKOUT}/payment-requests")
def list_payment_requests():
    p = provider()
    page, meta = paginate(p, "payment_request", statuses=PR_STATUSES)
    return p.render_json({"items": [views.payment_request(i) for i in page], "_metadata": meta})


@bp.get(f"{CHECKOUT}/payment-requests/<pr_id>")
def get_payment_request(pr_id):
    p = provider()
    return p.render_json(views.payment_request(p.machine.get(pr_id, p.tenant)))


@bp.put(f"{CHECKOUT}/payment-requests/<pr_id>/authorize")
def authorize(pr_id):
    p = provider()
    data = p.parse(schemas.Authorize, allow_empty=False)
    return p.render_json(views.payment_request(p.machine.authorize(p.tenant, pr_id, data["token"])))


@bp.put(f"{CHECKOUT}/payment-requests/<pr_id>/capture")
def capture(pr_id):
    p = provider()
    data = p.parse(schemas.Capture)
    return p.render_json(views.payment_request(p.machine.capture(p.tenant, pr_id, data.get("capture_amount"))))


@bp.put(f"{CHECKOUT}/payment-requests/<pr_id>/cancel")
def cancel(pr_id):
    p = provider()
    return p.render_json(views.payment_request(p.machine.cancel(p.tenant, pr_id)))


@bp.get(f"{CHECKOUT}/payment-requests/<pr_id>/public-info")
@no_auth
def public_info(pr_id):
    p = provider()
    return p.render_json(views.public_info(p.machine.get(pr_id, None)))


# -- Notification API --------------------------------------------------------------------------
@bp.get(f"{NOTIFICATION}/notifications")
def list_notifications():
    p = provider()
    page, meta = paginate(p, "notification", statuses=("new", "read"))
    return p.render_json({"items": [views.notification_view(n) for n in page], "_metadata": meta})


@bp.get(f"{NOTIFICATION}/notifications/<nid>")
def get_notification(nid):
    p = provider()
    return p.render_json(views.notification_view(p.machine.get_notification(p.tenant, nid)))


@bp.put(f"{NOTIFICATION}/notifications/<nid>/read")
def read_notification(nid):
    p = provider()
    return p.render_json(views.notification_view(p.machine.mark_read(p.tenant, nid)))


# -- hosted payment page -----------------------------------------------------------------------
def _page(p, pr, *, message=None, errors=None, form=None, status=200):
    return render_template("paysera/pay.html", pr=views.payment_request(pr), message=message, errors=errors or {},
                           form=form or {}, approve_cards=testcards.APPROVE_CARDS,
                           decline_cards=testcards.DECLINE_CARDS,
                           amount=views.render_amount(pr["_amount"], pr["_currency"], "string")), status


def _not_found_page():
    return render_template("paysera/result.html", title="Payment request not found",
                           text="This payment link is not valid."), 404


@bp.get("/checkout/pay/<pr_id>")
@no_auth
def pay_page(pr_id):
    p = provider()
    pr = p.store.get("payment_request", pr_id)
    if pr is None:
        return _not_found_page()
    return _page(p, pr)


@bp.post("/checkout/pay/<pr_id>")
@no_auth
def pay_submit(pr_id):
    p = provider()
    pr = p.store.get("payment_request", pr_id)
    if pr is None:
        return _not_found_page()
    if pr["status"] != "new":
        return _page(p, pr, status=409)
    request.get_data(cache=True)   # keep the raw form for the journal (masked there); form parsing reuses it
    form = request.form
    outcome = "cancel" if form.get("action") == "cancel" else "approve"
    card = {"number": form.get("card_number", ""), "exp_month": form.get("exp_month", ""),
            "exp_year": form.get("exp_year", ""), "cvv": form.get("cvv", ""),
            "holder_name": form.get("holder_name", "")}
    result = p.machine.pay(pr_id, outcome, card, consent=form.get("save_card") == "1")
    keep = {k: v for k, v in card.items() if k not in ("number", "cvv")}
    if result["result"] == "invalid":
        return _page(p, pr, errors=result["errors"], form=keep)
    if result["result"] == "declined":
        reason = result["reason"]
        return _page(p, pr, message=f"Payment declined: {testcards.DECLINE_REASONS.get(reason, reason)} ({reason})",
                     form=keep)
    if result.get("redirect"):
        return redirect(result["redirect"], code=303)
    if result["result"] == "canceled":
        return render_template("paysera/result.html", title="Payment canceled",
                               text="You left the payment. The merchant's link still works if you change your mind.")
    return render_template("paysera/result.html", title="Payment successful",
                           text="Thank you, your payment was received.",
                           pr=views.payment_request(result["payment_request"]))


def hosted_action(p, object_id, action):
    """POST /_sandbox/hosted/paysera/<id>: the hosted page's submit, for CI."""
    outcome = action.get("outcome", "approve")
    card = dict(action.get("card") or {})
    default = testcards.DEFAULT_DECLINE_CARD if outcome == "decline" else testcards.DEFAULT_APPROVE_CARD
    pr = p.machine.get(object_id, None)
    tenant = p.store.tenant_of("payment_request", object_id)
    card.setdefault("number", default)
    card.setdefault("exp_month", 12)
    card.setdefault("exp_year", p.now(tenant).year + 3)
    card.setdefault("cvv", "123")
    consent = action.get("recurring_consent", True)
    result = p.machine.pay(pr["id"], outcome, card, consent=bool(consent))
    if result["result"] == "invalid":
        raise Refusal("validation", [(f"card.{k}", v) for k, v in result["errors"].items()])
    body = {"result": result["result"], "payment_request": views.payment_request(result["payment_request"])}
    if result.get("reason"):
        body["reason"] = result["reason"]
    if result.get("redirect"):
        body["redirect_url"] = result["redirect"]
    return p.render_json(body)
