"""Stored objects for the admin API and the dashboard: listing, one object, its timeline.

GET  /_sandbox/objects                 paginated listing, newest first, with filters
GET  /_sandbox/objects/kinds           (provider, tenant, kind, count) of every listing
GET  /_sandbox/objects/<p>/<kind>/<id>           one object (masked) and its summary
GET  /_sandbox/objects/<p>/<kind>/<id>/timeline  requests, status changes, webhook attempts,
                                                 recurring series and state path; ?download=1
POST /_sandbox/webhooks/<id>/redeliver one more attempt of a delivery, now

A page costs about its own length whatever the store holds: pages walk the dashboard's own index
(index.py), which numbers objects as they are created. Objects are addressed by the key they are
stored under; one that carries another ``id`` (a payment kept under its request's id) is found by
that too.
"""
from __future__ import annotations

from flask import current_app, g, has_request_context, jsonify, request

from ..core.history import status_of
from . import diagram
from . import timeline as tl
from .index import ObjectIndex
from .common import admin, bad_request, int_arg, sandbox

MAX_LIMIT = 500


@admin.record_once
def _setup(state):
    sb = state.app.extensions["sandbox"]
    index = ObjectIndex()
    with sb.store.lock:  # no write slips between indexing what is stored and watching what comes
        index.load(sb.store)
        sb.store.observers.append(index.observe)
    state.app.extensions["sandbox_index"] = index

    def position():
        # a status change made while a provider request is handled belongs to that request,
        # which the journal numbers only once it is answered
        in_flight = has_request_context() and g.get("sandbox_provider") is not None
        return sb.journal.last_seq + (1 if in_flight else 0)

    sb.history.position = position
    sb.outbox.position = position


class Query:
    """The listing filters, from query arguments (the dashboard's forms use the same names)."""

    def __init__(self, args) -> None:
        self.provider = args.get("provider") or None
        self.tenant = args.get("tenant") or None
        self.kind = args.get("kind") or None
        self.id = (args.get("id") or "").strip() or None
        self.reference = (args.get("reference") or "").strip() or None
        self.status = (args.get("status") or "").strip() or None
        self.offset = int_arg(args, "offset", 0)
        self.limit = int_arg(args, "limit", 50, MAX_LIMIT)

    def args(self, **override) -> dict:
        out = {k: getattr(self, k) for k in ("provider", "tenant", "kind", "id", "reference", "status")}
        out.update(override)
        return {k: v for k, v in out.items() if v not in (None, "")}


def groups(sb, q: Query) -> list[tuple[str, str, str, int]]:
    return [g for g in sb.store.groups()
            if (q.provider is None or g[0] == q.provider) and (q.tenant is None or g[1] == q.tenant)
            and (q.kind is None or g[2] == q.kind)]


def listing(sb, q: Query) -> dict:
    store = sb.store
    index = current_app.extensions["sandbox_index"]
    chosen = groups(sb, q)
    if q.id:
        found = []
        for p, t, k, _ in chosen:
            key = q.id if store.tenant_of(p, k, q.id) is not None else index.key_of(p, k, q.id)
            if key is not None and (o := store.get(p, k, key, t)) is not None and tl.matches(o, q.reference, q.status):
                found.append((p, t, k, key, o))
        total, page = len(found), found[q.offset:q.offset + q.limit]
    else:
        total, keys = index.newest([(p, t, k) for p, t, k, _ in chosen], q.status, q.reference, q.offset, q.limit)
        # an object deleted since the index was read is left out of its page
        page = [(p, t, k, i, o) for (p, t, k), i in keys if (o := store.get(p, k, i, t)) is not None]
    items = [tl.summary(sb, p, k, i, o, t) for p, t, k, i, o in page]
    following = q.offset + len(items)
    return {"objects": items, "total": total, "offset": q.offset, "limit": q.limit,
            "next_offset": following if following < total else None}


def lookup(sb, provider: str, kind: str, id: str):
    """(object, tenant, the key it is stored under) or (None, None, None). ``id`` is the key, or the
    ``id`` the object carries where it is stored under another."""
    for key in (id, current_app.extensions["sandbox_index"].key_of(provider, kind, id)):
        obj = None if key is None else sb.store.get(provider, kind, key)
        if obj is not None:
            return obj, sb.store.tenant_of(provider, kind, key), key
    return None, None, None


def path(sb, provider: str, kind: str, id: str, obj: dict):
    """(table, current state, edges walked) for the object's state diagram, or None."""
    status = status_of(obj)
    table = diagram.table_for(sb.providers[provider], kind, status) if provider in sb.providers else None
    if table is None:
        return None
    return table, status, diagram.path_taken(table, sb.history.transitions(provider, kind, id))


def detail(sb, provider: str, kind: str, id: str, obj: dict, tenant: str) -> dict:
    """Everything the object page shows, as data: the timeline export is this document."""
    with sb.store.lock:  # a consistent snapshot while a request may be changing the object
        snapshot = tl.masked(obj)
    state = None
    if (drawn := path(sb, provider, kind, id, obj)) is not None:
        table, status, walked = drawn
        state = {"table": table.name, "initial": table.initial, "current": status,
                 "path": [list(e) for e in table.edges if (e[0], e[2]) in walked]}
    return {
        "object": tl.summary(sb, provider, kind, id, obj, tenant),
        "data": snapshot,
        "events": tl.timeline(sb, provider, kind, id, obj, tenant),
        "series": tl.series(sb, current_app.extensions["sandbox_index"], provider, kind, id, obj, tenant),
        "state": state,
    }


def redeliver(sb, delivery_id: str):
    """One more attempt of a delivery, now. Returns (body, status)."""
    d = sb.outbox.get(delivery_id)
    if d is None:
        return {"error": f"no webhook delivery {delivery_id}"}, 404
    record = sb.outbox.attempt(delivery_id)
    if record is None:
        return {"error": "the delivery is settled (the merchant acknowledged it): nothing to re-send"}, 409
    return {"attempt": record, "webhook": tl.delivery(sb.outbox.public(d))}, 200


@admin.get("/objects")
def objects_list():
    try:
        q = Query(request.args)
    except ValueError as exc:
        return bad_request(str(exc))
    return jsonify(listing(sandbox(), q))


@admin.get("/objects/kinds")
def objects_kinds():
    return jsonify({"kinds": [{"provider": p, "tenant": t, "kind": k, "count": n}
                              for p, t, k, n in sandbox().store.groups()]})


def _found(provider, kind, id):
    """((object, tenant, key), None), or (None, the 404 to answer)."""
    obj, tenant, key = lookup(sandbox(), provider, kind, id)
    if obj is None:
        return None, (jsonify({"error": f"no {kind} {id} stored for {provider}"}), 404)
    return (obj, tenant, key), None


@admin.get("/objects/<provider>/<kind>/<id>/timeline")
def object_timeline(provider, kind, id):
    found, missing = _found(provider, kind, id)
    if missing:
        return missing
    obj, tenant, key = found
    response = jsonify(detail(sandbox(), provider, kind, key, obj, tenant))
    if request.args.get("download"):
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in key)
        response.headers["Content-Disposition"] = f'attachment; filename="{provider}-{kind}-{safe}-timeline.json"'
    return response


@admin.get("/objects/<provider>/<kind>/<id>")
def object_get(provider, kind, id):
    found, missing = _found(provider, kind, id)
    if missing:
        return missing
    obj, tenant, key = found
    sb = sandbox()
    with sb.store.lock:
        data = tl.masked(obj)
    return jsonify({"object": tl.summary(sb, provider, kind, key, obj, tenant), "data": data})


@admin.post("/webhooks/<delivery_id>/redeliver")
def webhook_redeliver(delivery_id):
    body, status = redeliver(sandbox(), delivery_id)
    return jsonify(body), status
