"""Concurrent requests on one Gr4vy object: none is lost, undone or told twice.

A route reads its object before the machine takes the store lock. Each test stops one request at
that gap (a patched function in this process, where the ``server`` fixture serves) and lets the
competing request in there, so the race is run every time rather than now and then.
"""
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from gr4vy import auth
from gr4vy_helpers import CARD, new_key

from simulator.providers.gr4vy import machine as gr4vy_machine, routes as gr4vy_routes

Machine = gr4vy_machine.Machine


@pytest.fixture
def api(server, receiver):
    """``api(method, path, json=...)`` with Gr4vy's auth; webhooks are queued (never sent: the
    fixture's deliveries wait for a flush) so the tests can read what each change told."""
    resp = server.admin("PUT", "/config", json={"providers": {"gr4vy": {"webhook_url": receiver.url}}})
    assert resp.status_code == 200, resp.text
    private, _ = new_key()

    def call(method, path, **kw):
        headers = {"Authorization": "Bearer " + auth.get_token(private), "x-gr4vy-merchant-account-id": "default"}
        return requests.request(method, f"{server.url}/gr4vy{path}", headers=headers, timeout=10, **kw)
    return call


def events(server, name=None):
    out = []
    for delivery in server.webhooks(provider="gr4vy"):
        payload = delivery["payload"]
        payload = json.loads(payload) if isinstance(payload, str) else payload
        if name is None or payload["name"] == name:
            out.append(payload)
    return out


def assert_not_found(resp):
    assert resp.status_code == 404, resp.text
    assert resp.json()["type"] == "error" and resp.json()["code"] == "not_found", resp.text


def both_past_the_route(monkeypatch, method_name):
    """Neither request runs ``Machine.<method_name>`` until both have reached it, so both passed the
    route's own read while the object still existed."""
    barrier = threading.Barrier(2, timeout=5)
    original = getattr(Machine, method_name)

    def meet(self, *args, **kwargs):
        barrier.wait()
        return original(self, *args, **kwargs)
    monkeypatch.setattr(Machine, method_name, meet)


def twice_at_once(call, method, path):
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(lambda _: call(method, path), range(2)))


@pytest.mark.parametrize("path,body,deleting,event", [
    ("/payment-methods", {k: CARD[k] for k in ("method", "number", "expiration_date")}, "delete_payment_method",
     "payment-method.deleted"),
    ("/buyers", {"display_name": "Ada"}, "delete_buyer", "buyer.deleted"),
], ids=["payment method", "buyer"])
def test_two_overlapping_deletes_delete_once(server, api, monkeypatch, path, body, deleting, event):
    made = api("POST", path, json=body).json()
    both_past_the_route(monkeypatch, deleting)
    answers = sorted(twice_at_once(api, "DELETE", f"{path}/{made['id']}"), key=lambda r: r.status_code)
    assert answers[0].status_code == 204
    assert_not_found(answers[1])
    assert [e["target"]["id"] for e in events(server, event)] == [made["id"]]


def test_an_update_that_meets_a_delete_does_not_bring_the_buyer_back(server, api, monkeypatch):
    buyer = api("POST", "/buyers", json={"display_name": "Ada"}).json()
    deleted = []
    original = gr4vy_routes._get

    def read_then_delete(kind, object_id):
        found = original(kind, object_id)
        # the PUT has read the buyer and not yet taken the lock: the DELETE runs to its end here
        # (the DELETE's own read passes through, hence the mark set before it is sent)
        if kind == "buyer" and not deleted:
            deleted.append(None)
            deleted[0] = api("DELETE", f"/buyers/{object_id}")
        return found
    monkeypatch.setattr(gr4vy_routes, "_get", read_then_delete)
    put = api("PUT", f"/buyers/{buyer['id']}", json={"display_name": "Countess"})
    assert [d.status_code for d in deleted] == [204]
    assert_not_found(put)
    assert_not_found(api("GET", f"/buyers/{buyer['id']}"))
    assert [e["name"] for e in events(server) if e["name"].startswith("buyer.")] == ["buyer.created", "buyer.deleted"]


def test_a_refund_racing_a_capture_is_queued_after_it_and_missing_from_its_event_and_answer(server, api, monkeypatch):
    tx = api("POST", "/transactions", json={"amount": 1000, "currency": "USD", "intent": "authorize",
                                            "payment_method": CARD}).json()
    refund = {}
    refunding = threading.Thread(
        target=lambda: refund.setdefault("answer", api("POST", f"/transactions/{tx['id']}/refunds",
                                                       json={"amount": 400})))
    original = Machine.emit
    store_lock = server.sandbox.store.lock

    def emit(self, tenant, name, target):
        # The capture has been made and is about to be told: the refund is sent now. It can only get
        # in ahead of the event if the capture let go of the lock before telling; then wait for it.
        if name == "transaction.captured" and not refunding.is_alive() and "answer" not in refund:
            refunding.start()
            if not store_lock._is_owned():
                refunding.join(5)
        return original(self, tenant, name, target)
    monkeypatch.setattr(Machine, "emit", emit)
    captured = api("POST", f"/transactions/{tx['id']}/capture", json={})
    refunding.join(5)
    assert refund["answer"].status_code == 201, refund["answer"].text
    assert captured.status_code == 200, captured.text
    told = [(e["name"], e["target"]["id"], e["target"].get("refunded_amount")) for e in events(server)
            if e["name"] in ("transaction.captured", "refund.succeeded")]
    assert told == [("transaction.captured", tx["id"], 0), ("refund.succeeded", refund["answer"].json()["id"], None)]
    assert (captured.json()["status"], captured.json()["refunded_amount"]) == ("capture_succeeded", 0)
    assert api("GET", f"/transactions/{tx['id']}").json()["refunded_amount"] == 400
