"""Paysera's two lists page from the store's indexes: the same bytes as the code that filtered and
sliced every object of the tenant (kept below as the reference) for every kind of query, and one
page decodes about a page of objects however many the tenant holds."""
from __future__ import annotations

import itertools
import json
import pickle
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from flask import request

from simulator import create_app
from simulator.core.store import MemoryStore
from simulator.providers.base import current_provider
from simulator.providers.paysera import routes, views
from simulator.providers.shape import Refusal
from paysera_helpers import header

HOST = "127.0.0.1:8080"
TENANTS = {"shop-a": "key-a-secret", "shop-b": "key-b-secret"}
CHECKOUT = "/paysera/checkout/rest/v1/payment-requests"
NOTIFICATIONS = "/paysera/notification/rest/v1/notifications"
PR_STATUSES = routes.PR_STATUSES


# -- the reference: the lists as they were before they paged from the indexes ------------------
def _candidates(p, kind: str, statuses) -> list[dict]:
    status = request.args.get("status")
    if status in statuses:
        return p.store.where(kind, p.tenant, "status", status)
    return p.store.list(kind, p.tenant)


def paginate(p, items: list[dict], key_of, *, statuses, status_key="status"):
    # the arguments are checked as the route checks them; what changed is what follows
    limit, offset, direction = routes.list_arguments(statuses)
    args = request.args
    status = args.get("status")
    if status is not None:
        items = [i for i in items if i.get(status_key) == status]
    for name in ("business_id", "method_key"):
        if args.get(name) is not None:
            items = [i for i in items if i.get(name) == args[name]]
    ordered = list(reversed(items)) if direction == "desc" else list(items)
    ids = [key_of(i) for i in ordered]
    for cursor, step in (("after", 1), ("before", 0)):
        value = args.get(cursor)
        if value is None:
            continue
        if value not in ids:
            raise Refusal("invalid_cursor")
        at = ids.index(value)
        ordered, ids = (ordered[at + 1:], ids[at + 1:]) if step else (ordered[:at], ids[:at])
    page = ordered[offset:offset + limit]
    meta = {"total": len(ordered), "offset": offset, "limit": limit, "order_by": args.get("order_by", "createdAt"),
            "order_direction": direction, "has_next": offset + limit < len(ordered), "has_previous": offset > 0}
    if page:
        meta["cursors"] = {"after": key_of(page[-1]), "before": key_of(page[0])}
    return page, meta


def reference_payment_requests():
    p = current_provider("paysera")
    items = _candidates(p, "payment_request", PR_STATUSES)
    page, meta = paginate(p, items, lambda i: i["id"], statuses=PR_STATUSES)
    return p.render_json({"items": [views.payment_request(i) for i in page], "_metadata": meta})


def reference_notifications():
    p = current_provider("paysera")
    items = _candidates(p, "notification", ("new", "read"))
    page, meta = paginate(p, items, lambda i: i["id"], statuses=("new", "read"))
    return p.render_json({"items": [views.notification_view(n) for n in page], "_metadata": meta})


REFERENCE = {"paysera.list_payment_requests": reference_payment_requests,
             "paysera.list_notifications": reference_notifications}


# -- an in-process sandbox and a MAC-signing client for it ---------------------------------------
class Client:
    def __init__(self, app, mac_id="shop-a"):
        self.app, self.http, self.mac_id = app, app.test_client(), mac_id

    def call(self, method, path, body=None, params=None):
        raw = b"" if body is None else json.dumps(body).encode()
        if params:
            path += "?" + urlencode(params)
        auth = header(self.mac_id, TENANTS[self.mac_id], method, f"http://{HOST}{path}", raw)
        headers = {"Host": HOST, "Authorization": auth}
        if raw:
            headers["Content-Type"] = "application/json"
        return self.http.open(path, method=method, data=raw or None, headers=headers)


def new_app():
    return create_app({"seed": 11, "webhooks": "manual", "clock": {"start": "2026-01-01T00:00:00Z"},
                       "providers": {"paysera": {"credentials": TENANTS, "two_step": True}}})


def order(i, **extra):
    body = {"business_id": ("biz-a", "biz-b", "biz-c")[i % 3], "order_id": f"ORDER-{i}",
            "price": {"amount": "10.00", "currency": "EUR"}, "description": f"order {i}",
            "method_key": ("card", "card", "banklink", "paypal")[i % 4], "payer": {"email": "payer@example.com"},
            "locale": "en", "callback_url": "https://shop.example/cb"}
    body.update(extra)
    return body


@pytest.fixture(scope="module")
def stocked():
    """Two tenants' payment requests in every status, with business ids and methods mixed, and
    the notifications their changes made, some of them read."""
    app = new_app()
    a, b = Client(app), Client(app, "shop-b")
    token_pr = a.call("POST", CHECKOUT, order(0, method_key="card", token_strategy="required")).get_json()
    paid = app.test_client().post(f"/_sandbox/hosted/paysera/{token_pr['id']}", json={"outcome": "approve"})
    token = paid.get_json()["payment_request"]["issued_token"]
    for i in range(1, 46):
        client = b if i % 9 == 0 else a
        pr = client.call("POST", CHECKOUT, order(i)).get_json()
        if client is b:
            continue
        if i % 5 == 1:
            assert a.call("PUT", f"{CHECKOUT}/{pr['id']}/authorize", {"token": token}).status_code == 200
            if i % 10 == 1:
                assert a.call("PUT", f"{CHECKOUT}/{pr['id']}/capture").status_code == 200
        elif i % 7 == 2:
            assert a.call("PUT", f"{CHECKOUT}/{pr['id']}/cancel").status_code == 200
    notes = a.call("GET", NOTIFICATIONS, params={"limit": 200, "order_direction": "asc"}).get_json()["items"]
    for note in notes[::3]:
        assert a.call("PUT", f"{NOTIFICATIONS}/{note['id']}/read").status_code == 200
    return app, a, b


@contextmanager
def reference_lists(app):
    saved = {endpoint: app.view_functions[endpoint] for endpoint in REFERENCE}
    app.view_functions.update(REFERENCE)
    try:
        yield
    finally:
        app.view_functions.update(saved)


def answers(app, client, path, queries):
    got = [client.call("GET", path, params=q) for q in queries]
    with reference_lists(app):
        want = [client.call("GET", path, params=q) for q in queries]
    return [(r.status_code, r.get_data()) for r in got], [(r.status_code, r.get_data()) for r in want]


def ids_of(client, path, **params):
    return [i["id"] for i in client.call("GET", path, params={"limit": 200, **params}).get_json()["items"]]


def grid(filters, cursors):
    pages = [{}, {"offset": "0", "limit": "1"}, {"offset": "3", "limit": "5", "order_by": "id"},
             {"offset": "12", "limit": "200"}, {"offset": "1000000000"}, {"limit": "0"}, {"offset": "٣", "limit": "x"}]
    directions = [{}, {"order_direction": "asc"}, {"order_direction": "up"}]   # none is desc
    for f, (after, before), page, direction in itertools.product(filters, cursors, pages, directions):
        query = {**f, **page, **direction}
        if after is not None:
            query["after"] = after
        if before is not None:
            query["before"] = before
        yield query


def cursor_pairs(ids, foreign):
    points = [ids[0], ids[1], ids[len(ids) // 2], ids[-1], foreign, "PRAunknownunknownunknownunknown", ""]
    return ([(None, None)] + [(c, None) for c in points] + [(None, c) for c in points]
            + [(ids[1], ids[-1]), (ids[-1], ids[1]), (ids[2], ids[len(ids) // 2]), (ids[3], ids[3])])


def test_the_payment_request_list_answers_what_it_answered_when_it_filtered_every_object(stocked):
    app, a, b = stocked
    ids, foreign = ids_of(a, CHECKOUT), ids_of(b, CHECKOUT)[0]
    filters = [{}, *({"status": s} for s in PR_STATUSES), {"status": "bogus"}, {"business_id": "biz-b"},
               {"business_id": "nobody"}, {"method_key": "card"}, {"status": "new", "business_id": "biz-a"},
               {"business_id": "biz-c", "method_key": "banklink"},
               {"status": "canceled", "business_id": "biz-b", "method_key": "paypal"}]
    queries = list(grid(filters, cursor_pairs(ids, foreign)))
    got, want = answers(app, a, CHECKOUT, queries)
    assert len(ids) == 41 and len(queries) > 4000
    for query, g, w in zip(queries, got, want):
        assert g == w, query
    statuses = [s for s, _ in got]
    assert statuses.count(200) > 300 and 0 < statuses.count(400) and b'"invalid_cursor"' in b"".join(
        body for _, body in got)
    # the cursors of a page lead on to the next one, whatever the filters
    filtered = ids_of(a, CHECKOUT, business_id="biz-a", order_direction="asc")
    page = a.call("GET", CHECKOUT, params={"business_id": "biz-a", "order_direction": "asc", "limit": 2,
                                           "after": filtered[1]}).get_json()
    assert [i["id"] for i in page["items"]] == filtered[2:4] and page["_metadata"]["total"] == len(filtered) - 2


def test_the_notification_list_answers_what_it_answered_when_it_filtered_every_object(stocked):
    app, a, b = stocked
    ids, foreign = ids_of(a, NOTIFICATIONS), ids_of(b, CHECKOUT)[0]
    # the payment-request filters empty the notification list, as they always did
    filters = [{}, {"status": "new"}, {"status": "read"}, {"status": "captured"}, {"business_id": "biz-a"},
               {"status": "read", "method_key": "card"}]
    queries = list(grid(filters, cursor_pairs(ids, foreign)))
    got, want = answers(app, a, NOTIFICATIONS, queries)
    assert len(ids) > 15 and len(queries) > 1000
    for query, g, w in zip(queries, got, want):
        assert g == w, query
    assert [s for s, _ in got].count(200) > 200


# -- the cost of a page ------------------------------------------------------------------------
def letters(i: int, width: int) -> str:
    """Ids in the sandbox's alphabet without a long digit run (the journal's masking would take one
    for a card number)."""
    text = ""
    while i:
        i, digit = divmod(i, 26)
        text = "abcdefghijklmnopqrstuvwxyz"[digit] + text
    return text.rjust(width, "a")


def test_a_page_decodes_a_page_of_the_tenants_20k_payment_requests(monkeypatch, store_reads):
    monkeypatch.setattr(MemoryStore, "HOT", 8)
    app = new_app()
    a = Client(app)
    store = app.extensions["sandbox"].store
    first = a.call("POST", CHECKOUT, order(1)).get_json()["id"]
    template = pickle.dumps(store.get("paysera", "payment_request", first))
    n = 20_000
    ids = []
    for i in range(n):   # through the store, as benchmarks/serve.py seeds Checkout: 20k creates take minutes
        pr = pickle.loads(template)
        pr["id"] = "PRA" + letters(i, 29)
        pr["business_id"] = ("biz-a", "biz-b", "biz-c", "biz-d")[i % 4]
        pr["status"] = "captured" if i % 10 else "new"
        store.put("paysera", "payment_request", pr["id"], pr, "shop-a")
        ids.append(pr["id"])
    store.compact()
    touched = store_reads(store)

    def page(**params):
        touched.clear()
        body = a.call("GET", CHECKOUT, params=params).get_json()
        assert len(body["items"]) == int(params.get("limit", 20))
        assert touched.count("_live") == len(body["items"]) and touched.count("_thaw") <= len(body["items"])
        assert "_peek" not in touched
        return body

    whole = page(after=ids[12_345], offset=100)
    assert whole["_metadata"]["total"] == 12_345 + 1   # the template first, then the 20k in order
    assert [i["id"] for i in whole["items"]] == ids[12_244:12_224:-1]
    deep = page(status="new", order_direction="asc", offset=1500, limit=50)
    assert deep["_metadata"]["total"] == n // 10 + 1 and deep["items"][0]["id"] == ids[(1500 - 1) * 10]
    combined = page(status="new", business_id="biz-c", before=ids[10])   # the smaller bucket, scanned
    assert combined["_metadata"]["total"] == len(range(20, n, 20)) and combined["items"][0]["id"] == ids[-10]
    assert page(business_id="biz-b", limit=200)["_metadata"]["total"] == n // 4 + 1   # and the template
