"""Which objects the dashboard lists and in what order, the ids an object is found by, and where its
webhooks fall in its timeline."""
import re
from datetime import timedelta

import pytest
import requests
from bank131_client import bank  # noqa: F401
from cko_helpers import card_source, payment_request, sdk
from zafapay_helpers import ZafaPay

from simulator.admin import timeline as tl
from simulator.admin.index import ObjectIndex
from simulator.core.runtime import Sandbox
from simulator.testing import SandboxServer


def get(server, path, **params):
    return requests.get(server.url + "/_sandbox" + path, params=params, timeout=10)


def ids(server, **params):
    return [o["id"] for o in get(server, "/objects", **params).json()["objects"]]


def types(doc):
    return [e["type"] for e in doc["events"]]


# -- the listing: newest first across providers and kinds ------------------------------------------

def test_the_listing_is_newest_first_across_providers_and_kinds(server):
    cko, zp = sdk(server.url), ZafaPay(server.url)
    first = cko.payments.request_payment(payment_request(card_source(), reference="order-1")).id
    middle = zp.pay(external_id="order-2").json()["id"]
    last = cko.payments.request_payment(payment_request(card_source(), reference="order-3")).id
    assert ids(server, kind="payment") == [last, middle, first]
    assert ids(server, reference="order") == [last, middle, first]   # filtered listings merge the same way
    pages = [get(server, "/objects", kind="payment", limit=1, offset=n).json() for n in range(3)]
    assert [p["objects"][0]["id"] for p in pages] == [last, middle, first]
    assert [p["next_offset"] for p in pages] == [1, 2, None] and {p["total"] for p in pages} == {3}
    # every kind: the card both Checkout payments were charged on was stored first of all
    everything = get(server, "/objects").json()
    assert [o["id"] for o in everything["objects"]][:3] == [last, middle, first]
    assert everything["objects"][3]["kind"] == "instrument" and everything["total"] == 4
    page = get(server, "/ui/objects").text
    assert re.findall(r"<code>((?:pay|req)_\w+)</code>", page) == [last, middle, first]


def test_an_object_written_again_keeps_its_place_and_a_restart_orders_by_creation_time():
    sb = Sandbox(seed=1)
    index = ObjectIndex()
    sb.store.observers.append(index.observe)
    sb.store.put("p", "pay", "a", {"id": "a", "status": "open"}, "t1")
    sb.store.put("q", "order", "b", {"id": "b", "status": "open"}, "t2")
    sb.store.put("p", "pay", "c", {"id": "c", "status": "open"}, "t1")
    sb.store.put("p", "pay", "a", {"id": "a", "status": "done"}, "t1")   # a change is no creation
    groups = [("p", "t1", "pay"), ("q", "t2", "order")]
    assert index.newest(groups, None, None, 0, 10) == (3, [(groups[0], "c"), (groups[1], "b"), (groups[0], "a")])
    assert index.newest(groups, None, None, 1, 1) == (3, [(groups[1], "b")])
    assert index.newest(groups, "open", None, 0, 10) == (2, [(groups[0], "c"), (groups[1], "b")])

    # read back from a state file, the store hands objects over a listing at a time
    stored = Sandbox(seed=1)
    for group, oid, created in ((groups[0], "old", "2026-01-01T00:00:00Z"), (groups[0], "new", "2026-01-03T00:00:00Z"),
                                (groups[1], "mid", "2026-01-02T00:00:00Z")):
        stored.store.put(group[0], group[2], oid, {"id": oid, "created_at": created}, group[1])
    loaded = ObjectIndex()
    loaded.load(stored.store)
    assert [i for _, i in loaded.newest(groups, None, None, 0, 10)[1]] == ["new", "mid", "old"]
    stored.store.observers.append(loaded.observe)
    stored.store.put("q", "order", "next", {"id": "next"}, "t2")
    assert [i for _, i in loaded.newest(groups, None, None, 0, 10)[1]] == ["next", "new", "mid", "old"]


# -- the ids an object is found by ----------------------------------------------------------------

@pytest.fixture
def zp_server(receiver):
    srv = SandboxServer({"seed": 1, "clock": {"start": "2026-01-01T00:00:00Z"}, "webhooks": "manual",
                         "providers": {"zafapay": {"webhook_url": receiver.url + "/zafapay"}}}).start()
    yield srv
    srv.stop()


def test_a_payment_stored_under_its_request_id_is_listed_opened_and_traced_by_both_ids(zp_server):
    server, api = zp_server, ZafaPay(zp_server.url)
    key = api.pay().json()["id"]
    assert server.hosted("zafapay", key, outcome="approve").status_code == 200
    tx = api.get(f"/v1/payments/{key}").json()["id"]
    assert key.startswith("req_") and tx.startswith("tx_")
    assert api.post(f"/v1/payments/{tx}/refund", {}).status_code == 200

    # listed by the key it is stored under, so its link opens
    assert ids(server, provider="zafapay") == [key]
    assert f'href="/_sandbox/ui/objects/zafapay/payment/{key}"' in get(server, "/ui/objects").text
    # and found by the id the API shows once it is paid
    for ident in (key, tx):
        assert get(server, f"/objects/zafapay/payment/{ident}").json()["object"]["id"] == key
        assert get(server, f"/ui/objects/zafapay/payment/{ident}").status_code == 200
    assert ids(server, id=tx) == [key] and ids(server, id="tx_nope") == []

    doc = get(server, f"/objects/zafapay/payment/{key}/timeline").json()
    assert f"/zafapay/v1/payments/{tx}/refund" in [e["path"] for e in doc["events"] if e["type"] == "request"]
    assert [e["event_type"] for e in doc["events"] if e["type"] == "webhook"] == \
        ["payment.succeeded", "payment.refunded"]
    page = get(server, f"/ui/objects/zafapay/payment/{key}").text
    assert len(re.findall(r'action="/_sandbox/ui/webhooks/[^"]+/redeliver"', page)) == 2


def test_a_bank131_session_timeline_has_the_customers_widget_requests(server, bank):
    created = bank.client.session("create", {"amount_details": {"amount": 10000, "currency": "rub"}})
    sid = created.json()["session"]["id"]
    public_token = bank.client.post("/api/v1/token", {"acquiring_widget": {"session_id": sid}}).json()["public_token"]
    widget = f"{server.url}/bank131/widget/{public_token}"
    card = {"number": "4242424242424242", "expiration_month": "12", "expiration_year": "30", "security_code": "123"}
    assert requests.get(widget, timeout=10).status_code == 200
    assert requests.post(widget, data=card, allow_redirects=False, timeout=10).status_code == 303
    assert requests.post(widget, data=card, allow_redirects=False, timeout=10).status_code == 400   # paid already

    doc = get(server, f"/objects/bank131/session/{sid}/timeline").json()
    on_widget = [(e["method"], e["status"]) for e in doc["events"]
                 if e["type"] == "request" and "/widget/" in e["path"]]
    assert on_widget == [("GET", 200), ("POST", 303), ("POST", 400)]
    submitted = next(n for n, e in enumerate(doc["events"]) if e.get("status") == 303)
    assert [(e["type"], e.get("to") or e.get("event_type")) for e in doc["events"][submitted + 1:submitted + 3]] == \
        [("transition", "in_progress"), ("webhook", "ready_to_confirm")]


# -- where a delivery falls in the timeline ---------------------------------------------------------

@pytest.mark.parametrize("clock", [{}, {"clock": {"start": "2026-01-01T00:00:00Z"}}], ids=["running", "frozen"])
def test_a_delivery_comes_right_after_the_request_that_queued_it(receiver, clock):
    srv = SandboxServer({"seed": 1, "webhooks": "manual", **clock,
                         "providers": {"checkout": {"webhook_url": receiver.url}}}).start()
    try:
        api = sdk(srv.url)
        pay = api.payments.request_payment(payment_request(card_source()))
        api.payments.get_payment_details(pay.id)
        srv.flush()
        doc = get(srv, f"/objects/checkout/payment/{pay.id}/timeline").json()
    finally:
        srv.stop()
    assert types(doc) == ["request", "transition", "transition", "webhook", "webhook", "request",
                          "webhook_attempt", "webhook_attempt"]
    assert [e["method"] for e in doc["events"] if e["type"] == "request"] == ["POST", "GET"]


def test_without_a_known_queue_position_a_delivery_follows_what_was_answered_in_its_millisecond():
    # a delivery read back from a state file has no position: virtual time decides, to the
    # millisecond deliveries keep, though the journal keeps microseconds
    sb = Sandbox(seed=1, clock_start="2026-01-01T00:00:00Z")
    sb.store.put("p", "thing", "thing_1", {"id": "thing_1", "status": "new"}, "t")
    sb.journal.record(provider="p", tenant="t", method="POST", path="/p/things/thing_1", status=201,
                      at=(sb.clock.now("t") + timedelta(microseconds=400)).isoformat(), rules=(),
                      request_body=b"", request_type=None, response_body=b"", response_type=None)
    sb.outbox.enqueue(provider="p", tenant="t", event_type="thing.created", url="http://127.0.0.1:9/", body=b"{}",
                      schedule=[], subject="thing_1")
    events = tl.timeline(sb, "p", "thing", "thing_1", sb.store.get("p", "thing", "thing_1"), "t")
    assert [e["type"] for e in events] == ["transition", "request", "webhook"]
