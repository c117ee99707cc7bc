"""Gr4vy routes: thin handlers — parse, run the machine, render.

A handler that changes an object renders its answer before letting go of the store lock (the
machine takes it again, re-entrantly): the answer then shows the object as this request left it,
like the event the machine queued, and not as a request waiting for the lock changes it next.
"""
from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import uuid
from datetime import timedelta
from functools import partial
from typing import Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, redirect, render_template, request

from ...core.clock import parse_instant
from ...core.memo import Memo
from ...lazy import LazyModule
from ..base import current_provider, idempotent_view, no_auth
from ..shape import Refusal
from . import views
from .machine import BUYER_SEARCHED, FACETS, buyer_data, facets_test, flag

bp = Blueprint("gr4vy", __name__, template_folder="templates")
schemas = LazyModule(__package__ + ".schemas")
IDEMPOTENCY_TTL = timedelta(hours=24)


provider = partial(current_provider, "gr4vy")


def idempotent(scope):
    """Replay the first answer to a repeated ``idempotency-key`` (24 h); 409 while in flight.

    ``scope(**view_args)`` names what the key is unique within (one endpoint, or one transaction's
    capture, void or refunds)."""
    def hooks(p, key, **view_args):
        if not 1 <= len(key) <= 255:
            raise Refusal("validation", [("/idempotency-key", "Must be 1 to 255 characters.")], location="header")
        return {"ttl": IDEMPOTENCY_TTL, "scope": scope(**view_args),
                "fingerprint": hashlib.sha256(request.get_data(cache=True)).hexdigest(),
                "in_flight": lambda: p.error("concurrent_request"),
                # validation failures are not remembered
                "remember": lambda r: not (r.status_code == 400 or r.status_code >= 500)}
    return idempotent_view("idempotency-key", hooks)


# -- query helpers --------------------------------------------------------------------------
def _query_error(name: str, message: str):
    raise Refusal("validation", [(f"/{name}", message)], location="query")


def _integer(raw: str) -> int | None:
    """``raw`` as an integer, or None. Python refuses to convert more than 4,300 digits
    (ValueError), so a long digit run is not an integer either, rather than a 500."""
    if not (raw.isascii() and raw.removeprefix("-").isdigit()):
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _limit() -> int:
    limit = _integer(request.args.get("limit", "20"))
    if limit is None or not 1 <= limit <= 100:
        _query_error("limit", "Must be an integer between 1 and 100.")
    return limit


def _bool_arg(name: str):
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        _query_error(name, "Must be true or false.")
    return raw.lower() == "true"


def _int_arg(name: str):
    raw = request.args.get(name)
    if raw is None:
        return None
    value = _integer(raw)
    if value is None:
        _query_error(name, "Must be an integer.")
    return value


def _uuid(name: str, raw: str) -> str:
    """``raw`` as Gr4vy reads a UUID query parameter (32 hex digits of either case, hyphens
    optional), in the canonical form the sandbox's ids have; anything else is a malformed query."""
    if not _HEX32.fullmatch(raw.replace("-", "")):
        _query_error(name, "Must be a UUID.")
    return str(uuid.UUID(raw))


_HEX32 = re.compile("[0-9A-Fa-f]{32}")


def _uuid_arg(name: str):
    raw = request.args.get(name)
    return None if raw is None else _uuid(name, raw)


def _time_arg(name: str):
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return parse_instant(raw)
    except (ValueError, OverflowError):   # OverflowError: an offset that moves it out of years 1-9999
        _query_error(name, "Must be an ISO-8601 date-time with a time zone.")


def _window() -> tuple[int, int]:
    """The query's ``limit``, and the offset its ``cursor`` stands for."""
    limit = _limit()
    cursor = request.args.get("cursor")
    offset = 0
    if cursor:
        try:
            offset = int(json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["o"])
            if offset < 0:
                raise ValueError
        # OverflowError: {"o": Infinity}; RecursionError: a cursor nested deep enough to exhaust the stack
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, OverflowError, RecursionError):
            _query_error("cursor", "Invalid cursor.")
    return limit, offset


def page(items: list[dict], render=views.visible) -> dict:
    """One page of ``items`` as the query's ``limit`` and ``cursor`` ask."""
    limit, offset = _window()
    return views.page(items[offset:offset + limit], limit, offset, offset + limit < len(items), render)


def _prefers(resource: str) -> bool:
    values = ",".join(request.headers.getlist("prefer"))
    return any(part.strip().lower() == f"resource={resource}" for part in values.split(","))


def _body():
    return provider().json_body()


def _get(kind: str, object_id: str) -> dict:
    p = provider()
    obj = p.store.get(kind, object_id, tenant=p.tenant)
    if obj is None:
        raise Refusal("not_found")
    return obj


# -- transactions ---------------------------------------------------------------------------
_canonical_ips = Memo(1024)   # as sent -> canonical, or "" for no address: every create asks it


def _ip(raw: str | None) -> str | None:
    """An IP address in one canonical form (``::1`` however written), or None if ``raw`` is none."""
    if not raw:
        return None
    canonical = _canonical_ips.get(raw)
    if canonical is None:
        try:
            canonical = str(ipaddress.ip_address(raw.strip()))
        except ValueError:
            canonical = ""
        _canonical_ips.keep(raw, canonical)
    return canonical or None


def _buyer_ip() -> str | None:
    """Gr4vy takes the buyer's IP from ``X-Forwarded-For`` (the SDK's ``x_forwarded_for``: "use this
    when calling our API from the server side ... rather than your server IP"), else the caller's.
    The first entry is the client's; an entry that is no IP address is not taken for one."""
    forwarded = request.headers.get("x-forwarded-for")
    return (_ip(forwarded.split(",", 1)[0]) if forwarded else None) or _ip(request.remote_addr)


@bp.post("/transactions")
@idempotent(lambda: "POST /transactions")
def create_transaction():
    p = provider()
    data = schemas.load(schemas.TransactionCreate, _body())
    base_url = p.base_url()
    ip_address = _buyer_ip()
    with p.store.lock:
        tx = p.machine.create_transaction(p.tenant, data, base_url, ip_address=ip_address)
        return p.render_json(views.visible(tx), 201)


@bp.get("/transactions/<transaction_id>")
def get_transaction(transaction_id):
    return provider().render_json(views.visible(_get("transaction", transaction_id)))


def _in(name: str, value) -> bool:
    wanted = request.args.getlist(name)
    return not wanted or value in wanted


# Filters on what the sandbox does not simulate (checkout sessions, payment links, gift cards,
# reauthorization): no transaction has one, as for a Gr4vy account that never used them.
_NEVER_MATCH = ("checkout_session_id", "payment_link_id", "gift_card_id", "reauthorized_from_transaction_id")


@bp.get("/transactions")
def list_transactions():
    p = provider()
    a = request.args
    amount_eq, amount_gte, amount_lte = _int_arg("amount_eq"), _int_arg("amount_gte"), _int_arg("amount_lte")
    bools = {name: _bool_arg(name) for name in ("merchant_initiated", "is_subsequent_payment", "has_refunds",
                                                 "pending_review", "disputed", "has_gift_card_redemptions",
                                                 "has_settlements", "used_3ds")}
    times = {name: _time_arg(name) for name in ("created_at_gte", "created_at_lte", "updated_at_gte", "updated_at_lte")}
    # Gr4vy's UUID parameters: a malformed one is a 400, and any spelling of an id finds it
    tx_id, buyer_id, pm_id = _uuid_arg("id"), _uuid_arg("buyer_id"), _uuid_arg("payment_method_id")
    services = [_uuid("payment_service_id", raw) for raw in a.getlist("payment_service_id")]
    never = [name for name in _NEVER_MATCH if _uuid_arg(name) is not None]
    last4 = a.get("gift_card_last4")
    if last4 is not None:
        if len(last4) != 4:
            _query_error("gift_card_last4", "Must be 4 characters.")
        never.append("gift_card_last4")
    metadata = {}
    for raw in a.getlist("metadata"):
        try:
            item = json.loads(raw)
        except (ValueError, RecursionError):   # RecursionError: nesting deep enough to exhaust the stack
            item = None
        if not isinstance(item, dict):
            _query_error("metadata", "Must be a JSON object of strings.")
        metadata.update(item)
    ip_filter = a.get("ip_address")
    if ip_filter is not None:
        ip_filter = _ip(ip_filter) or ip_filter   # not an address: matches nothing, as any other value
    buyer_search = a.getlist("buyer_search")

    def keep(tx: dict) -> bool:
        pm = tx.get("payment_method") or {}
        buyer = tx.get("buyer") or {}
        checks = [
            _in("status", tx["status"]), _in("currency", tx["currency"]), _in("country", tx.get("country")),
            _in("payment_source", tx["payment_source"]), _in("method", tx.get("method")),
            _in("error_code", tx.get("error_code")), _in("payment_method_scheme", pm.get("scheme")),
            not services or (tx.get("payment_service") or {}).get("id") in services,
            tx_id in (None, tx["id"]), buyer_id in (None, tx["_buyer_id"]),
            a.get("external_identifier") in (None, tx.get("external_identifier")),
            a.get("reconciliation_id") in (None, tx["reconciliation_id"]),
            a.get("payment_service_transaction_id") in (None, tx.get("payment_service_transaction_id")),
            pm_id in (None, tx["_pm_id"]),
            a.get("payment_method_label") in (None, pm.get("label")),
            a.get("payment_method_fingerprint") in (None, pm.get("fingerprint")),
            a.get("payment_method_bin") in (None, (pm.get("details") or {}).get("bin")),
            a.get("payment_method_country") in (None, pm.get("country")),
            a.get("buyer_external_identifier") in (None, buyer.get("external_identifier")),
            a.get("buyer_email_address") in (None, (buyer.get("billing_details") or {}).get("email_address")),
            ip_filter in (None, tx.get("_ip_address")),
            amount_eq is None or tx["amount"] == amount_eq,
            amount_gte is None or tx["amount"] >= amount_gte,
            amount_lte is None or tx["amount"] <= amount_lte,
            all((tx.get("metadata") or {}).get(k) == v for k, v in metadata.items()),
        ]
        if buyer_search:   # every value is one of the buyer's data, exactly
            checks.append(set(buyer_search) <= buyer_data(buyer))
        for name, value in bools.items():
            if value is not None:
                checks.append(flag(tx, name) == value)
        for name, value in times.items():
            if value is not None:
                field, op = name.rsplit("_", 1)
                stamp = parse_instant(tx[field])
                checks.append(stamp >= value if op == "gte" else stamp <= value)
        search = a.get("search")
        if search:   # Gr4vy: an exact match of any of these, all searched at once
            checks.append(search in (tx["id"], tx.get("external_identifier"), buyer.get("id"),
                                     buyer.get("external_identifier"), tx.get("payment_service_transaction_id")))
        return all(checks)

    if never:
        return p.render_json(page([], render=views.transaction_summary))
    if tx_id is not None:   # the id is the store's own key: no index, no scan
        found = p.store.get("transaction", tx_id, tenant=p.tenant)
        return p.render_json(page([found] if found is not None and keep(found) else [],
                                  render=views.transaction_summary))
    # every filter as a test of an indexed field, so that the page is read from the objects that
    # pass them all, or from a walk that reads no other: ``keep`` still decides each one read
    match: list[tuple[str, object]] = [
        (field, value) for field, value in (
            ("_buyer_id", buyer_id), ("_pm_id", pm_id), ("_ip_address", ip_filter),
            *((field, a.get(field)) for field in (
                "external_identifier", "reconciliation_id", "payment_service_transaction_id",
                "buyer_external_identifier", "buyer_email_address", "payment_method_fingerprint",
                "payment_method_label", "payment_method_bin")))
        if value is not None]
    statuses = a.getlist("status")
    if statuses:
        match.append(("status", statuses[0]) if len(statuses) == 1 else ("status", set(statuses).__contains__))
    facet_test = facets_test({name: a.getlist(name) for name in FACETS[:6]}
                             | {"payment_method_country": a.getlist("payment_method_country"),
                                "payment_service_id": services},
                             (amount_eq if amount_eq is not None else amount_gte,
                              amount_eq if amount_eq is not None else amount_lte), bools)
    if facet_test is not None:
        match.append(("facets", facet_test))
    for name, bound in times.items():
        if bound is not None:
            field, op = name.rsplit("_", 1)
            match.append((field, partial(_instant_within, bound, op == "gte")))
    if any(not isinstance(v, str) for v in metadata.values()):
        return p.render_json(page([], render=views.transaction_summary))   # metadata values are strings
    match += [("metadata", pair) for pair in metadata.items()]
    match += [("buyer_data", value) for value in buyer_search]
    search = a.get("search")
    # a search matches any of the fields ``keep`` searches: their buckets together hold every one
    any_of = [(field, search) for field in ("id", "external_identifier", "_buyer_id", "buyer_external_identifier",
                                            "payment_service_transaction_id")] if search else []
    return p.render_json(_listing("transaction", match, keep, views.transaction_summary, any_of))


def _instant_within(bound, at_least: bool, stamp: str) -> bool:
    held = parse_instant(stamp)
    return held >= bound if at_least else held <= bound


@bp.post("/transactions/<transaction_id>/capture")
@idempotent(lambda transaction_id: f"capture {transaction_id}")
def capture_transaction(transaction_id):
    p = provider()
    tx = _get("transaction", transaction_id)
    data = schemas.load(schemas.TransactionCapture, _body())
    wrapped = _prefers("transaction-capture")
    with p.store.lock:
        result = p.machine.capture(p.tenant, tx, data)
        return p.render_json(views.capture(tx, result) if wrapped else views.visible(tx))


@bp.post("/transactions/<transaction_id>/void")
@idempotent(lambda transaction_id: f"void {transaction_id}")
def void_transaction(transaction_id):
    p = provider()
    tx = _get("transaction", transaction_id)
    wrapped = _prefers("transaction-void")
    with p.store.lock:
        result = p.machine.void(p.tenant, tx)
        return p.render_json(views.void(tx, result) if wrapped else views.visible(tx))


@bp.post("/transactions/<transaction_id>/refunds")
@idempotent(lambda transaction_id: f"refund {transaction_id}")
def create_refund(transaction_id):
    p = provider()
    tx = _get("transaction", transaction_id)
    data = schemas.load(schemas.RefundCreate, _body())
    with p.store.lock:
        return p.render_json(views.visible(p.machine.refund(p.tenant, tx, data)), 201)


@bp.post("/transactions/<transaction_id>/refunds/all")
def refund_all(transaction_id):
    p = provider()
    tx = _get("transaction", transaction_id)
    body = _body()
    data = schemas.load(schemas.RefundCreate, {k: v for k, v in body.items() if k != "amount"}
                        if isinstance(body, dict) else body)
    with p.store.lock:
        refund = p.machine.refund(p.tenant, tx, data, all_remaining=True)
        return p.render_json(views.items([refund] if refund else []), 201)


@bp.get("/transactions/<transaction_id>/refunds")
def list_refunds(transaction_id):
    p = provider()
    tx = _get("transaction", transaction_id)
    refunds = [p.store.get("refund", rid, tenant=p.tenant) for rid in tx["_refund_ids"]]
    return p.render_json(page([r for r in reversed(refunds) if r is not None]))


@bp.get("/transactions/<transaction_id>/refunds/<refund_id>")
def get_transaction_refund(transaction_id, refund_id):
    p = provider()
    refund = _get("refund", refund_id)
    if refund["transaction_id"] != transaction_id:
        raise Refusal("not_found")
    return p.render_json(views.visible(refund))


@bp.get("/refunds/<refund_id>")
def get_refund(refund_id):
    return provider().render_json(views.visible(_get("refund", refund_id)))


# -- payment methods ------------------------------------------------------------------------
def _payment_method(pm: dict) -> dict:
    p = provider()
    return views.payment_method(pm, p.machine.buyer_of(p.tenant, pm))


@bp.post("/payment-methods")
def create_payment_method():
    p = provider()
    data = schemas.load(schemas.PaymentMethodCreate, _body())
    with p.store.lock:
        return p.render_json(_payment_method(p.machine.create_payment_method(p.tenant, data)), 201)


@bp.get("/payment-methods/<payment_method_id>")
def get_payment_method(payment_method_id):
    return provider().render_json(_payment_method(_get("payment-method", payment_method_id)))


@bp.delete("/payment-methods/<payment_method_id>")
def delete_payment_method(payment_method_id):
    p = provider()
    pm = _get("payment-method", payment_method_id)
    p.machine.delete_payment_method(p.tenant, pm)
    return Response(status=204)


@bp.get("/payment-methods")
def list_payment_methods():
    p = provider()
    a = request.args
    buyer_id = a.get("buyer_id")
    if a.get("buyer_external_identifier"):
        buyer = p.machine.find_buyer(p.tenant, external_identifier=a["buyer_external_identifier"])
        buyer_id = buyer["id"] if buyer else "-none-"

    def keep(pm):
        return (buyer_id in (None, pm["_buyer_id"]) and _in("status", pm["status"])
                and a.get("external_identifier") in (None, pm.get("external_identifier")))
    statuses = a.getlist("status")
    match = [(field, value) for field, value in (("_buyer_id", buyer_id), ("external_identifier", a.get("external_identifier")),
                                                 ("status", set(statuses).__contains__ if statuses else None))
             if value is not None]
    return p.render_json(_listing("payment-method", match, keep, _payment_method))


@bp.get("/buyers/payment-methods")
def list_buyer_payment_methods():
    p = provider()
    a = request.args
    if not a.get("buyer_id") and not a.get("buyer_external_identifier"):
        _query_error("buyer_id", "Give buyer_id or buyer_external_identifier.")
    buyer = p.machine.find_buyer(p.tenant, a.get("buyer_id"), a.get("buyer_external_identifier"))
    if buyer is None:
        raise Refusal("not_found")
    sort_by = a.get("sort_by", "last_used_at")
    if sort_by not in ("last_used_at", "usage_count", "cit_last_used_at", "cit_usage_count"):
        _query_error("sort_by", "Must be one of last_used_at, usage_count, cit_last_used_at, cit_usage_count.")
    order = a.get("order_by", "desc")
    if order not in ("asc", "desc"):
        _query_error("order_by", "Must be asc or desc.")
    # Gr4vy: the country and currency filters "only apply to payment methods with a `country`
    # (`currency`) value", so a method without one (every vaulted card here) stays listed.
    wanted = {name: a.get(name) for name in ("country", "currency") if a.get(name) is not None}
    items = [pm for pm in p.store.where("payment-method", p.tenant, "_buyer_id", buyer["id"])
             if pm["status"] == "succeeded"
             and all(pm.get(name) in (None, value) for name, value in wanted.items())]
    items.sort(key=lambda pm: (pm.get(sort_by) is not None, pm.get(sort_by) or 0, pm["created_at"]),
               reverse=order == "desc")
    return p.render_json(views.items(items, views.payment_method_summary))


# -- buyers ---------------------------------------------------------------------------------
@bp.post("/buyers")
def create_buyer():
    p = provider()
    data = schemas.load(schemas.BuyerCreate, _body())
    with p.store.lock:
        return p.render_json(views.visible(p.machine.create_buyer(p.tenant, data)), 201)


@bp.get("/buyers/<buyer_id>")
def get_buyer(buyer_id):
    return provider().render_json(views.visible(_get("buyer", buyer_id)))


@bp.put("/buyers/<buyer_id>")
def update_buyer(buyer_id):
    p = provider()
    buyer = _get("buyer", buyer_id)
    data = schemas.load(schemas.BuyerCreate, _body())
    with p.store.lock:
        return p.render_json(views.visible(p.machine.update_buyer(p.tenant, buyer, data)))


@bp.delete("/buyers/<buyer_id>")
def delete_buyer(buyer_id):
    p = provider()
    p.machine.delete_buyer(p.tenant, _get("buyer", buyer_id))
    return Response(status=204)


@bp.get("/buyers")
def list_buyers():
    p = provider()
    a = request.args
    search = (a.get("search") or "").lower()

    def keep(b):
        if a.get("external_identifier") not in (None, b.get("external_identifier")):
            return False
        return not search or any(search in str(b.get(f) or "").lower() for f in BUYER_SEARCHED)
    match = [("external_identifier", a["external_identifier"])] if a.get("external_identifier") is not None else []
    if search:   # a partial match (Gr4vy's): asked of each buyer's indexed text, not of each buyer read
        match.append(("searched_text", lambda text: search in text))
    return p.render_json(_listing("buyer", match, keep))


def _listing(kind: str, match: list[tuple[str, object]], keep: Callable[[dict], bool], render=views.visible,
             any_of: list[tuple[str, str]] = ()) -> dict:
    """One page of ``kind`` objects newest first (by the kind's ``Machine.orders`` field) that ``keep``
    holds for, ``match`` naming what it asks of indexed fields and ``any_of`` pairs one of which
    each holds (see the store's ``ordered``)."""
    p = provider()
    limit, offset = _window()
    chunk, more = p.store.ordered(kind, p.tenant, keep, offset, limit, match, any_of)
    return views.page(chunk, limit, offset, more, render)


# -- buyer approval page (3DS / redirect), reached through payment_method.approval_url --------
def _pending(transaction_id: str):
    store = provider().store
    tenant = store.tenant_of("transaction", transaction_id)
    tx = store.get("transaction", transaction_id) if tenant else None
    return tenant, tx


def _return_url(tx: dict) -> str | None:
    url = tx.get("_redirect_url")
    if not url:
        return None
    parts = urlsplit(url)
    query = (parts.query + "&" if parts.query else "") + urlencode(
        {"gr4vy_transaction_id": tx["id"], "gr4vy_transaction_status": tx["status"]})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@bp.get("/approval/<transaction_id>")
@no_auth
def approval_page(transaction_id):
    _, tx = _pending(transaction_id)
    if tx is None:
        raise Refusal("not_found")
    return render_template("gr4vy_approval.html", tx=views.visible(tx),
                           waiting=tx["status"] == "buyer_approval_pending")


@bp.post("/approval/<transaction_id>")
@no_auth
def approval_submit(transaction_id):
    outcome = request.form.get("outcome", "approve")
    three_ds = request.form.get("three_ds", "pass")
    if outcome not in ("approve", "decline", "cancel") or three_ds not in ("pass", "fail"):
        raise Refusal("validation", [("/outcome", "Unknown outcome.")])
    p = provider()
    with p.store.lock:   # the return URL carries the status this approval left
        response = hosted_action(p, transaction_id, {"outcome": outcome, "three_ds": three_ds})
        _, tx = _pending(transaction_id)
        target = _return_url(tx)
    return redirect(target, 302) if target else response


def hosted_action(p, object_id, action):
    """The approval page's buttons, for ``POST /_sandbox/hosted/gr4vy/<transaction id>`` too."""
    tenant, tx = _pending(object_id)
    if tx is None:
        raise Refusal("not_found")
    with p.store.lock:
        tx = p.machine.approve(tenant, tx, action.get("outcome", "approve"), action.get("three_ds", "pass"))
        return p.render_json(views.visible(tx))
