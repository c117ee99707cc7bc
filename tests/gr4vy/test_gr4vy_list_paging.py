"""Gr4vy's transaction, buyer and payment-method lists read their page from the store in the list's
order (most recently updated first; payment methods newest first): the same bytes as the code that
filtered and sorted every object of the tenant (kept below as the reference), and a page decodes
about a page of objects however many the tenant holds."""
from __future__ import annotations

import json
import pickle
from urllib.parse import urlencode

import pytest
import requests
from gr4vy import auth
from gr4vy_helpers import CARD, client as sdk_client, new_key, tenant_of

from simulator import create_app
from simulator.core.store import MemoryStore
from simulator.providers.base import current_provider
from simulator.providers.gr4vy import routes, views
from simulator.testing import ServerProcess

PRIVATE, PUBLIC = new_key()
TOKEN = auth.get_token(PRIVATE)


# -- the reference: the lists as they were before they read in order ------------------------------
def reference_newest(kind, keep, render=views.visible):
    p = current_provider("gr4vy")
    items = [o for o in p.store.list(kind, p.tenant) if keep(o)]
    key = p.machine.orders[kind]
    return routes.page(sorted(reversed(items), key=lambda o: o[key], reverse=True), render)


def reference_listing(kind, match, keep, render=views.visible, any_of=()):
    return reference_newest(kind, keep, render)   # ``keep`` checks the indexed filters and the search too


class Client:
    def __init__(self, app):
        self.app, self.http = app, app.test_client()

    def call(self, method, path, body=None, params=None):
        path = "/gr4vy" + path + ("?" + urlencode(params, doseq=True) if params else "")
        headers = {"Authorization": f"Bearer {TOKEN}", "x-gr4vy-merchant-account-id": "default"}
        return self.http.open(path, method=method, json=body, headers=headers)

    def ok(self, method, path, body=None):
        resp = self.call(method, path, body)
        assert resp.status_code in (200, 201, 204), resp.get_data(True)
        return resp.get_json()

    def advance(self, duration):
        self.http.post("/_sandbox/clock", json={"advance": duration})


def new_app():
    return create_app({"seed": 5, "webhooks": "manual", "clock": {"start": "2026-01-01T00:00:00Z"},
                       "providers": {"gr4vy": {"public_keys": [PUBLIC]}}})


@pytest.fixture(scope="module")
def stocked():
    """Buyers, vaulted cards and transactions in several states, written at a few instants: many
    share an ``updated_at`` (the clock stands still between moves), and later captures, voids,
    refunds and buyer updates move older objects ahead of newer ones."""
    app = new_app()
    c = Client(app)
    buyers = [c.ok("POST", "/buyers", {"display_name": f"Buyer {i}", "external_identifier": f"b-{i}",
                                       "billing_details": {"email_address": f"b{i}@example.com"}})
              for i in range(6)]
    txs = []
    for i in range(40):
        if i % 7 == 3:
            c.advance("PT1M")
        body = {"amount": 1000 + 100 * (i % 5), "currency": "USD", "intent": "authorize" if i % 3 else "capture",
                "payment_method": dict(CARD, number=OTHER_CARD) if i % 9 == 4 else dict(CARD)}
        if i % 4 == 0:
            body["buyer_id"] = buyers[i % 6]["id"]
        if i % 3 == 0:
            body["external_identifier"] = f"order-{i}"
        if i % 5 == 1:
            body["metadata"] = {"plan": "gold" if i % 2 else "silver", "seats": str(i % 3)}
        if i % 5 == 0:
            body["payment_method"]["method"] = "card"
            body["store"] = True
        txs.append(c.ok("POST", "/transactions", body))
    c.advance("PT1H")
    for n, tx in enumerate(txs):
        if tx["status"] == "authorization_succeeded" and n % 4 == 1:
            c.ok("POST", f"/transactions/{tx['id']}/capture", {})
        elif tx["status"] == "authorization_succeeded" and n % 4 == 2:
            c.ok("POST", f"/transactions/{tx['id']}/void")
        if n % 6 == 0:
            c.advance("PT10S")
    for tx in txs[:12:3]:
        if tx["status"] == "capture_succeeded":
            c.ok("POST", f"/transactions/{tx['id']}/refunds", {"amount": 100})
    for buyer in buyers[1::2]:
        c.ok("PUT", f"/buyers/{buyer['id']}", {"display_name": buyer["display_name"] + " (moved)"})
    for i in range(5):
        c.ok("POST", "/payment-methods", {**CARD, "buyer_id": buyers[i]["id"]} if i % 2 else dict(CARD))
        c.advance("PT1S")
    return app, c, buyers, txs


def walk(c, path, params, limit):
    """Every page of a list, following ``next_cursor``, and back one step from the last."""
    pages, cursor = [], None
    while True:
        resp = c.call("GET", path, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})})
        pages.append(resp.get_data())
        body = json.loads(resp.get_data())
        cursor = body["next_cursor"]
        if not cursor:
            if body["previous_cursor"]:
                pages.append(c.call("GET", path, params={**params, "limit": limit,
                                                        "cursor": body["previous_cursor"]}).get_data())
            return pages


OTHER_CARD = "5555555555554444"
# "@name": a value of the stocked objects (see ``resolve``)
QUERIES = [
    ("/transactions", {}), ("/transactions", {"status": "capture_succeeded"}),
    ("/transactions", {"buyer_id": "@buyer 0"}), ("/transactions", {"buyer_external_identifier": "b-4"}),
    ("/transactions", {"buyer_email_address": "b0@example.com", "status": "capture_succeeded"}),
    ("/transactions", {"payment_method_fingerprint": "@fingerprint of the other card"}),
    ("/transactions", {"payment_method_fingerprint": "@fingerprint of the card"}),
    ("/transactions", {"payment_service_transaction_id": "@psp id of 13"}),
    ("/transactions", {"search": "order-9"}), ("/transactions", {"search": "b-0"}),
    ("/transactions", {"search": "@buyer 4"}), ("/transactions", {"search": "@id of 7"}),
    ("/transactions", {"search": "@psp id of 13"}),
    ("/transactions", {"status": ["authorization_succeeded", "authorization_voided"]}),
    ("/transactions", {"has_refunds": "true"}), ("/transactions", {"amount_gte": "1300", "currency": "USD"}),
    ("/transactions", {"merchant_initiated": "false", "status": "capture_succeeded"}),
    ("/transactions", {"status": "processing_failed"}),
    ("/transactions", {"currency": "EUR"}), ("/transactions", {"amount_eq": "1200"}),
    ("/transactions", {"amount_lte": "1100", "status": "capture_succeeded"}),
    ("/transactions", {"metadata": '{"plan": "gold"}'}), ("/transactions", {"metadata": '{"plan": ["gold"]}'}), ("/transactions", {"metadata": ['{"plan": "gold"}', '{"seats": "0"}']}),
    ("/transactions", {"buyer_search": ["b-0", "b0@example.com"]}), ("/transactions", {"buyer_search": "Buyer 2"}),
    ("/transactions", {"created_at_gte": "2026-01-01T00:02:00Z"}),
    ("/transactions", {"created_at_lte": "2026-01-01T00:02:00Z", "updated_at_gte": "2026-01-01T01:00:00Z"}),
    ("/transactions", {"payment_method_label": "4444"}), ("/transactions", {"payment_method_bin": "555555"}),
    ("/transactions", {"ip_address": "127.0.0.1"}), ("/transactions", {"ip_address": "10.0.0.1"}),
    ("/transactions", {"method": "card", "payment_source": "ecommerce", "has_refunds": "false"}),
    ("/transactions", {"used_3ds": "true"}), ("/transactions", {"status": ["capture_succeeded"], "currency": ["USD", "EUR"]}),
    ("/buyers", {}), ("/buyers", {"search": "moved"}), ("/buyers", {"search": "B-1"}),
    ("/buyers", {"search": "r 3", "external_identifier": "b-3"}), ("/buyers", {"search": "@buyer 2"}),
    ("/payment-methods", {}), ("/payment-methods", {"status": "succeeded"}),
]


# queries no stocked transaction answers: each is read to its end
NOTHING_HOLDS = [{"status": "processing_failed"}, {"metadata": '{"plan": ["gold"]}'}, {"currency": "EUR"}, {"ip_address": "10.0.0.1"}, {"used_3ds": "true"}]


@pytest.fixture(scope="module")
def named(stocked):
    """What an "@name" in ``QUERIES`` stands for."""
    app, c, buyers, txs = stocked
    values = {f"buyer {i}": b["id"] for i, b in enumerate(buyers)}
    for i, tx in enumerate(txs):
        tx = c.ok("GET", f"/transactions/{tx['id']}")
        values[f"id of {i}"] = tx["id"]
        values[f"psp id of {i}"] = tx["payment_service_transaction_id"]
        card = "fingerprint of the other card" if i % 9 == 4 else "fingerprint of the card"
        values[card] = tx["payment_method"]["fingerprint"]
    return values


@pytest.mark.parametrize("path,params", QUERIES, ids=[f"{p} {q}" for p, q in QUERIES])
@pytest.mark.parametrize("limit", [1, 3, 20, 100])
def test_each_page_is_what_sorting_every_object_gave(stocked, named, monkeypatch, path, params, limit):
    app, c, *_ = stocked
    params = {k: named[v[1:]] if isinstance(v, str) and v.startswith("@") else v for k, v in params.items()}
    ordered = walk(c, path, params, limit)
    with monkeypatch.context() as reference:
        reference.setattr(routes, "_listing", reference_listing)
        assert ordered == walk(c, path, params, limit)
    assert len(ordered) >= 1 and all(json.loads(page)["items"] is not None for page in ordered)
    if path == "/transactions" and params and params not in NOTHING_HOLDS:
        assert json.loads(ordered[0])["items"]   # the query names what some transactions have


def test_the_order_is_most_recently_updated_first_with_the_newest_created_first_among_equals(stocked):
    app, c, buyers, txs = stocked
    listed = c.ok("GET", "/transactions?limit=100")["items"]
    assert len(listed) == len(txs)
    keys = [(t["updated_at"], [x["id"] for x in txs].index(t["id"])) for t in listed]
    assert keys == sorted(keys, reverse=True)
    assert len({t["updated_at"] for t in listed}) < len(listed)   # ties were there to break
    # a capture an hour later put an early transaction ahead of every one created after it
    captured = [t for t in listed if t["status"] == "capture_succeeded" and t["updated_at"] > txs[-1]["updated_at"]]
    assert captured and listed.index(captured[0]) < [t["id"] for t in listed].index(txs[-1]["id"])


def test_a_write_moves_an_object_to_the_front_and_a_reset_empties_the_list():
    app = new_app()
    c = Client(app)
    first = c.ok("POST", "/transactions", {"amount": 1000, "currency": "USD", "intent": "authorize",
                                          "payment_method": CARD})
    c.advance("PT1M")
    second = c.ok("POST", "/transactions", {"amount": 1000, "currency": "USD", "intent": "authorize",
                                           "payment_method": CARD})
    assert [t["id"] for t in c.ok("GET", "/transactions")["items"]] == [second["id"], first["id"]]
    c.advance("PT1M")
    c.ok("POST", f"/transactions/{first['id']}/capture", {})
    assert [t["id"] for t in c.ok("GET", "/transactions")["items"]] == [first["id"], second["id"]]
    assert c.http.post("/_sandbox/reset").status_code in (200, 204)
    assert c.ok("GET", "/transactions")["items"] == []
    third = c.ok("POST", "/transactions", {"amount": 1000, "currency": "USD", "intent": "authorize",
                                          "payment_method": CARD})
    assert [t["id"] for t in c.ok("GET", "/transactions")["items"]] == [third["id"]]


def test_a_page_decodes_a_page_of_the_tenants_20k_transactions(monkeypatch, store_reads):
    monkeypatch.setattr(MemoryStore, "HOT", 8)
    app = new_app()
    c = Client(app)
    store = app.extensions["sandbox"].store
    tenant = tenant_of(PRIVATE)
    first = c.ok("POST", "/transactions", {"amount": 1000, "currency": "USD", "payment_method": CARD})
    template = pickle.dumps(store.get("gr4vy", "transaction", first["id"]))
    n = 20_000
    ids, updated = [], []
    for i in range(n):   # through the store: 20k creates over the API take a minute
        tx = pickle.loads(template)
        tx["id"] = f"{i:08x}-0000-4000-8000-000000000000"
        # written in creation order, but updated at instants that run backwards in blocks of ten
        tx["updated_at"] = f"2026-01-{1 + (n - i) // 1000:02d}T00:00:{i % 10:02d}.000Z"
        updated.append(tx["updated_at"])
        tx["status"] = "authorization_declined" if i % 1000 == 7 else \
            "capture_succeeded" if i % 2 else "authorization_voided"
        tx["payment_service_transaction_id"] = f"psp-{i}"
        if i % 1000 == 7:
            tx["buyer"] = {"type": "buyer", "id": None, "display_name": None, "external_identifier": f"guest-{i}",
                           "billing_details": {"email_address": "guest@example.com"}, "account_number": None}
            tx.update(currency="EUR", amount=777, metadata={"plan": "gold"}, refunded_amount=100,
                      created_at="2025-12-31T00:00:00+00:00", external_identifier="order-shared")
        store.put("gr4vy", "transaction", tx["id"], tx, tenant)
        ids.append(tx["id"])
    store.compact()
    touched = store_reads(store)

    def page(**params):
        touched.clear()
        body = c.ok("GET", "/transactions?" + urlencode(params))
        return body, touched.count("_peek"), touched.count("_thaw")

    expected = sorted(range(n), key=lambda i: (updated[i], i), reverse=True)
    body, peeked, thawed = page(limit=20)
    assert [t["id"] for t in body["items"]] == [ids[i] for i in expected[:20]] and body["next_cursor"]
    assert peeked == 21 and thawed <= 21   # the page and the one that says another follows
    body, peeked, thawed = page(limit=20, status="capture_succeeded")   # every other one matches
    assert [t["id"] for t in body["items"]] == [ids[i] for i in expected if i % 2 and i % 1000 != 7][:20]
    assert peeked <= 2 * 21 + 1 and thawed <= peeked
    # a status few transactions have is read from its bucket, not by walking past the others
    body, peeked, thawed = page(limit=5, status="authorization_declined")
    assert [t["id"] for t in body["items"]] == [ids[i] for i in expected if i % 1000 == 7][:5]
    assert peeked == 6 and thawed <= 6 and body["next_cursor"]   # the page and the one that says more follow
    body, peeked, thawed = page(status="processing_failed")
    assert body["items"] == [] and peeked == thawed == 0
    # a search many transactions answer reads its page and one more, not all it finds
    body, peeked, _ = page(limit=5, search="order-shared")
    assert [t["id"] for t in body["items"]] == [ids[i] for i in expected if i % 1000 == 7][:5]
    assert set(touched.keys) == {("gr4vy", "transaction", ids[i]) for i in [i for i in expected if i % 1000 == 7][:6]}
    # a filter that names one transaction, or one buyer's, reads its bucket; so does a search; and
    # so do the filters on values a share of the list holds, when few hold the one asked for
    rare = [i for i in expected if i % 1000 == 7]
    for query, wanted in (({"payment_service_transaction_id": "psp-12345"}, [12345]),
                          ({"search": "psp-12345"}, [12345]), ({"buyer_external_identifier": "guest-5007"}, [5007]),
                          ({"search": "guest-5007"}, [5007]), ({"buyer_email_address": "guest@example.com"}, rare),
                          ({"currency": "EUR"}, rare), ({"amount_eq": 777}, rare), ({"amount_lte": 800}, rare),
                          ({"has_refunds": "true"}, rare), ({"metadata": json.dumps({"plan": "gold"})}, rare),
                          ({"buyer_search": "guest-5007"}, [5007]), ({"currency": "USD", "amount_gte": 1000,
                                                                       "payment_service_transaction_id": "psp-3"}, [3]),
                          ({"created_at_lte": "2025-12-31T12:00:00Z"}, rare),
                          ({"created_at_gte": "2027-01-01T00:00:00Z"}, []), ({"currency": "JPY"}, []),
                          ({"metadata": json.dumps({"plan": "silver"})}, []), ({"amount_gte": 10 ** 9}, [])):
        body, peeked, _ = page(limit=100, **query)
        assert [t["id"] for t in body["items"]] == [ids[i] for i in wanted], query
        assert set(touched.keys) == {("gr4vy", "transaction", ids[i]) for i in wanted}, query
    # a card every transaction paid with: its bucket is everything, so the list is walked in order
    fingerprint = store.get("gr4vy", "transaction", ids[0])["payment_method"]["fingerprint"]
    body, peeked, thawed = page(limit=20, payment_method_fingerprint=fingerprint)
    assert [t["id"] for t in body["items"]] == [ids[i] for i in expected[:20]] and peeked == 21
    body, peeked, _ = page(limit=20, cursor=views.cursor(1000))
    assert [t["id"] for t in body["items"]] == [ids[i] for i in expected[1000:1020]] and peeked == 1021


def test_a_buyer_search_reads_only_the_buyers_it_finds(monkeypatch, store_reads):
    # a partial match, case aside, of the id, display name or external identifier: each buyer's
    # indexed text is asked, and no buyer the search does not find is decoded
    monkeypatch.setattr(MemoryStore, "HOT", 8)
    app = new_app()
    c = Client(app)
    store = app.extensions["sandbox"].store
    first = c.ok("POST", "/buyers", {"display_name": "Template", "external_identifier": "t-0"})
    template = pickle.dumps(store.get("gr4vy", "buyer", first["id"]))
    tenant = tenant_of(PRIVATE)
    n = 5000
    for i in range(n):
        buyer = pickle.loads(template)
        buyer.update(id=f"{i:08x}-0000-4000-8000-000000000000", display_name=f"Customer {i}",
                     external_identifier=f"ext-{i}", updated_at=f"2026-01-01T00:00:{i % 60:02d}+00:00")
        store.put("gr4vy", "buyer", buyer["id"], buyer, tenant)
    store.compact()
    touched = store_reads(store)
    for search, wanted in (("CUSTOMER 4321", [4321]), ("ext-499", [499] + list(range(4990, 5000))),
                           ("00001234-0000", [0x1234]), ("nobody", [])):
        touched.clear()
        found = c.ok("GET", "/buyers?" + urlencode({"search": search, "limit": 100}))["items"]
        expected = sorted(wanted, key=lambda i: (i % 60, i), reverse=True)
        assert [b["external_identifier"] for b in found] == [f"ext-{i}" for i in expected], search
        assert {key[2] for key in touched.keys} == {f"{i:08x}-0000-4000-8000-000000000000" for i in wanted}


def state_args(tmp_path, seed: int) -> tuple[str, ...]:
    """``run.py`` arguments for a sandbox on a state file in ``tmp_path``, started again on it."""
    cfg = tmp_path / "gr4vy.yaml"
    cfg.write_text(json.dumps({"clock": {"start": "2026-01-01T00:00:00Z"}, "webhooks": "manual"}))
    return ("--seed", str(seed), "--config", str(cfg), "--state", str(tmp_path / "state.db"))


def test_the_sdk_lists_most_recently_updated_first_and_the_order_survives_a_kill_9(tmp_path):
    # through the official SDK against `python run.py --state`: the order is rebuilt from what the
    # state file kept, so the same pages come back after a SIGKILL, and a write after it goes first
    args = state_args(tmp_path, seed=3)

    def listed(sdk):
        ids, cursor = [], None
        while True:
            page = sdk.transactions.list(limit=2, cursor=cursor).result
            ids += [t.id for t in page.items]
            cursor = page.next_cursor
            if not cursor:
                return ids

    srv = ServerProcess(*args).wait_ready()
    try:
        sdk = sdk_client(srv, PRIVATE)
        created = [sdk.transactions.create(amount=1000 + i, currency="USD", intent="authorize",
                                           payment_method=CARD).id for i in range(5)]
        requests.post(f"{srv.url}/_sandbox/clock", json={"advance": "PT1M"}, timeout=10).raise_for_status()
        sdk.transactions.capture(transaction_id=created[1])
        before = listed(sdk)
        assert before == [created[1], created[4], created[3], created[2], created[0]]
        srv.kill9()
    finally:
        srv.stop()
    srv = ServerProcess(*args).wait_ready()
    try:
        sdk = sdk_client(srv, PRIVATE)
        assert listed(sdk) == before
        requests.post(f"{srv.url}/_sandbox/clock", json={"advance": "PT1M"}, timeout=10).raise_for_status()
        sdk.transactions.void(transaction_id=created[2])
        assert listed(sdk) == [created[2]] + [i for i in before if i != created[2]]
    finally:
        srv.stop()


def test_the_sdk_finds_by_each_indexed_filter_before_and_after_a_kill_9(tmp_path):
    # the buyer and card indexes are rebuilt from the state file: the same filters find the same
    # transactions after a SIGKILL, and a transaction made after it is found by them too
    args = state_args(tmp_path, seed=4)
    other = dict(CARD, number=OTHER_CARD)

    def found(sdk, **query):
        return [t.id for t in sdk.transactions.list(limit=100, **query).result.items]

    def queries(sdk, tx):
        full = sdk.transactions.get(transaction_id=tx)
        return {"payment_service_transaction_id": full.payment_service_transaction_id,
                "buyer_external_identifier": "ada-1", "buyer_email_address": "ada@example.com",
                "payment_method_fingerprint": full.payment_method.fingerprint, "search": "ada-1",
                "amount_eq": 1200, "currency": ["EUR"], "metadata": ['{"plan": "gold"}'],
                "buyer_search": ["Ada"], "payment_method_label": full.payment_method.label}

    srv = ServerProcess(*args).wait_ready()
    try:
        sdk = sdk_client(srv, PRIVATE)
        buyer = sdk.buyers.create(display_name="Ada", external_identifier="ada-1",
                                  billing_details={"email_address": "ada@example.com"}).id
        for _ in range(3):
            sdk.transactions.create(amount=1000, currency="USD", intent="authorize", payment_method=CARD)
        ada = sdk.transactions.create(amount=1200, currency="EUR", intent="authorize", payment_method=other,
                                      buyer_id=buyer, metadata={"plan": "gold"}).id
        asked = queries(sdk, ada)
        before = {name: found(sdk, **{name: value}) for name, value in asked.items()}
        assert before == dict.fromkeys(asked, [ada])
        assert found(sdk, search=asked["payment_service_transaction_id"]) == [ada]
        assert [b.id for b in sdk.buyers.list(search="ADA-").result.items] == [buyer]   # a partial match
        srv.kill9()
    finally:
        srv.stop()
    srv = ServerProcess(*args).wait_ready()
    try:
        sdk = sdk_client(srv, PRIVATE)
        assert {name: found(sdk, **{name: value}) for name, value in asked.items()} == before
        assert [b.id for b in sdk.buyers.list(search="ADA-").result.items] == [buyer]
        again = sdk.transactions.create(amount=1300, currency="USD", intent="authorize", payment_method=other,
                                        buyer_id=buyer).id
        assert found(sdk, buyer_email_address="ada@example.com") == [again, ada]
        assert found(sdk, payment_method_fingerprint=asked["payment_method_fingerprint"]) == [again, ada]
    finally:
        srv.stop()
