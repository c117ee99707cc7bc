"""The admin API the dashboard reads (object listing, timeline, redeliver) and its form endpoints."""
import re

import pytest
import requests
from cko_helpers import card_source, id_source, payment_request, sdk

from simulator.core.runtime import Sandbox


@pytest.fixture
def series(server):
    api = sdk(server.url)
    cit = api.payments.request_payment(payment_request(card_source(), reference="order-0"))
    mits = [api.payments.request_payment(payment_request(id_source(cit.source.id), merchant_initiated=True,
                                                         previous_payment_id=cit.id, reference=f"order-{n}"))
            for n in range(1, 6)]
    return [cit.id] + [m.id for m in mits]


def get(server, path, **params):
    return requests.get(server.url + "/_sandbox" + path, params=params, timeout=10)


def test_listing_pages_newest_first_and_filters(server, series):
    first = get(server, "/objects", kind="payment", limit=4).json()
    assert first["total"] == 6 and first["next_offset"] == 4
    assert [o["id"] for o in first["objects"]] == series[::-1][:4]
    rest = get(server, "/objects", kind="payment", limit=4, offset=4).json()
    assert [o["id"] for o in rest["objects"]] == series[::-1][4:] and rest["next_offset"] is None
    one = get(server, "/objects", id=series[2]).json()["objects"]
    assert [(o["id"], o["kind"], o["reference"], o["amount"], o["currency"]) for o in one] == \
        [(series[2], "payment", "order-2", 5000, "USD")]
    assert [o["id"] for o in get(server, "/objects", reference="ORDER-3").json()["objects"]] == [series[3]]
    assert get(server, "/objects", status="captured", provider="checkout").json()["total"] == 6
    assert get(server, "/objects", status="voided").json()["total"] == 0
    kinds = get(server, "/objects/kinds").json()["kinds"]
    assert {(k["kind"], k["count"]) for k in kinds} == {("payment", 6), ("instrument", 1)}


@pytest.mark.parametrize("params", [{"limit": "x"}, {"offset": "-1"}, {"offset": "9" * 12}])
def test_listing_refuses_bad_paging(server, params):
    resp = get(server, "/objects", **params)
    assert resp.status_code == 400 and "must be a non-negative integer" in resp.json()["error"]


def test_timeline_of_an_unknown_object_is_404(server):
    assert get(server, "/objects/checkout/payment/pay_nope/timeline").status_code == 404
    assert get(server, "/objects/checkout/payment/pay_nope").status_code == 404
    assert get(server, "/ui/objects/checkout/payment/pay_nope").status_code == 404


def test_timeline_and_series(server, series):
    doc = get(server, f"/objects/checkout/payment/{series[3]}/timeline").json()
    assert [e["type"] for e in doc["events"]][:3] == ["request", "transition", "transition"]
    assert doc["events"][0]["path"] == "/checkout/payments"
    assert [(e["from"], e["to"]) for e in doc["events"][1:3]] == [(None, "Authorized"), ("Authorized", "Captured")]
    assert [p["id"] for p in doc["series"]["payments"]] == series
    assert [p["initiated"] for p in doc["series"]["payments"]] == ["customer"] + ["merchant"] * 5
    assert doc["state"]["current"] == "Captured"
    assert doc["state"]["path"] == [["Requested", "authorization_approved", "Authorized"],
                                    ["Authorized", "capture_full", "Captured"]]


def test_a_payment_captured_as_it_authorizes_is_saved_once_and_its_timeline_keeps_both_steps(server):
    saved = []
    store = server.app.extensions["sandbox"].store
    store.observers.append(lambda provider, kind, id, tenant, obj: saved.append((kind, obj and obj.get("status"))))
    api = sdk(server.url)
    mit = api.payments.request_payment(payment_request(card_source()))
    assert saved == [("instrument", None), ("payment", "Captured")]
    doc = get(server, f"/objects/checkout/payment/{mit.id}/timeline").json()
    assert [(e["from"], e["to"]) for e in doc["events"] if e["type"] == "transition"] == \
        [(None, "Authorized"), ("Authorized", "Captured")]
    # after a challenge, the authorization the capture follows is a step of its own too
    challenged = api.payments.request_payment(payment_request(card_source("4500622868341387")))
    server.hosted("checkout", challenged.id, outcome="approve", three_ds="pass")
    doc = get(server, f"/objects/checkout/payment/{challenged.id}/timeline").json()
    assert [(e["from"], e["to"]) for e in doc["events"] if e["type"] == "transition"] == \
        [(None, "Pending"), ("Pending", "Authorized"), ("Authorized", "Captured")]


def test_redeliver(server, receiver):
    server.admin("PUT", "/config", json={"providers": {"checkout": {"webhook_url": receiver.url}}})
    pay = sdk(server.url).payments.request_payment(payment_request(card_source()))
    server.flush()
    delivery = next(d for d in server.webhooks() if d["subject"] == pay.id)
    resp = server.admin("POST", f"/webhooks/{delivery['id']}/redeliver", json={})
    assert resp.status_code == 200 and resp.json()["attempt"]["status"] == 200
    assert len(resp.json()["webhook"]["attempts"]) == 2
    assert server.admin("POST", "/webhooks/nope/redeliver", json={}).status_code == 404


def test_the_webhooks_page_filters_by_delivery_status(server, receiver):
    # the filter's own links once became the answer's HTTP status line ("HTTP/1.1 0 delivered")
    server.admin("PUT", "/config", json={"providers": {"checkout": {"webhook_url": receiver.url}}})
    sdk(server.url).payments.request_payment(payment_request(card_source()))
    server.flush()
    for status, listed in (("delivered", 2), ("failed", 0), ("500", 0)):
        resp = get(server, "/ui/webhooks", status=status)
        assert resp.status_code == 200
        assert len(re.findall(r"<tr data-delivery", resp.text)) == listed
        assert (f'<a href="?status={status}" class="on">' in resp.text) is (status != "500")


def form_token(server) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', get(server, "/").text).group(1)


def test_forms_need_the_token_and_this_origin(server):
    url = server.url + "/_sandbox/ui/clock"
    token = form_token(server)
    same = {"Origin": server.url}
    plain = requests.post(url, data={"csrf": token, "advance": "PT1H"}, headers=same, allow_redirects=False)
    assert plain.status_code == 303 and plain.headers["Location"].startswith("/_sandbox/?notice=clock+moved")
    assert requests.post(url, data={"advance": "PT1H"}, headers=same).status_code == 403
    assert requests.post(url, data={"csrf": "guess", "advance": "PT1H"}, headers=same).status_code == 403
    evil = requests.post(url, data={"csrf": token, "advance": "PT1H"}, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403
    referer = requests.post(url, data={"csrf": token, "advance": "PT1H"},
                            headers={"Referer": "http://evil.example/page"})
    assert referer.status_code == 403
    assert requests.post(url, json={"csrf": token, "advance": "PT1H"}).status_code == 415
    assert server.admin("GET", "/clock").json()["now"] == "2026-01-01T01:00:00.000Z"   # only one moved it


def test_form_redirects_stay_on_the_dashboard(server):
    token = form_token(server)
    for target in ("https://evil.example/", "//evil.example/", "/checkout/payments"):
        resp = requests.post(server.url + "/_sandbox/ui/flush", data={"csrf": token, "next": target},
                             allow_redirects=False)
        assert resp.status_code == 303 and resp.headers["Location"].startswith("/_sandbox/?notice=flushed")


def test_bad_clock_input_is_shown_not_raised(server):
    resp = requests.post(server.url + "/_sandbox/ui/clock", data={"csrf": form_token(server), "duration": "P1Y"},
                         allow_redirects=False)
    assert resp.status_code == 303 and "problem=not+an+ISO-8601+duration" in resp.headers["Location"]


def test_hosted_step_refused_by_the_provider_is_shown(server, series):
    resp = requests.post(f"{server.url}/_sandbox/ui/hosted/checkout/{series[0]}",
                         data={"csrf": form_token(server), "outcome": "approve"}, allow_redirects=False)
    assert resp.status_code == 303 and "problem=409" in resp.headers["Location"]
    assert "not+waiting+for+authentication" in resp.headers["Location"]


def test_history_follows_status_changes_and_resets_per_tenant():
    sb = Sandbox(seed=1, clock_start="2026-01-01T00:00:00Z")
    obj = {"id": "a", "status": "new"}
    sb.store.put("p", "thing", "a", obj, "t1")
    sb.store.put("p", "thing", "a", obj, "t1")          # written again unchanged: no transition
    obj["status"] = "done"
    sb.store.put("p", "thing", "a", obj, "t1")
    sb.store.put("p", "thing", "b", {"id": "b", "status": "new"}, "t2")
    assert [(m["from"], m["to"]) for m in sb.history.transitions("p", "thing", "a")] == [(None, "new"), ("new", "done")]
    sb.reset("t1")
    assert sb.history.transitions("p", "thing", "a") == []
    assert len(sb.history.transitions("p", "thing", "b")) == 1


def test_index_follows_writes_deletes_and_resets():
    from simulator.admin.index import ObjectIndex
    sb = Sandbox(seed=1)
    sb.store.put("p", "pay", "old", {"id": "old", "status": "open", "reference": "A-1"}, "t1")
    index = ObjectIndex()
    index.load(sb.store)                      # what was stored before the dashboard started
    sb.store.observers.append(index.observe)
    card = {"id": "card1", "last4": "4242"}
    sb.store.put("p", "card", "card1", card, "t1")
    for n in range(3):
        sb.store.put("p", "pay", f"p{n}", {"id": f"p{n}", "status": "open", "reference": f"A-{n + 10}",
                                           "card_id": "card1"}, "t1")
    group = ("p", "t1", "pay")

    def ids(status=None, reference=None):
        count, page = index.matching(group, status, reference)
        return count, page(0, 10)

    assert ids("OPEN") == (4, ["p2", "p1", "p0", "old"])
    moved = sb.store.get("p", "pay", "p0")
    moved["status"] = "closed"
    sb.store.put("p", "pay", "p0", moved, "t1")
    assert ids("open") == (3, ["p2", "p1", "old"]) and ids("closed") == (1, ["p0"])
    assert ids("open", "a-1") == (3, ["p2", "p1", "old"])
    assert index.related(group, None, "card1") == ["p0", "p1", "p2"]
    sb.store.delete("p", "pay", "p1")
    assert ids("open") == (2, ["p2", "old"]) and index.related(group, None, "card1") == ["p0", "p2"]
    sb.reset("t1")
    assert ids("open") == (0, []) and index.related(group, None, "card1") == []


def test_a_redelivered_webhook_is_not_sent_again_by_the_retry_it_replaced(server, receiver):
    # the receiver was down, the retry is scheduled; QA fixes the receiver and redelivers at once:
    # the delivery is done, and the retry that was waiting must not send the event a second time
    server.admin("PUT", "/config", json={"providers": {"checkout": {"webhook_url": receiver.url}}})
    receiver.status = 500
    pay = sdk(server.url).payments.request_payment(payment_request(card_source()))
    server.flush()
    delivery = next(d for d in server.webhooks() if d["subject"] == pay.id)
    assert delivery["status"] == "failed" and delivery["next_attempt_at"] is not None
    receiver.status = 200
    resp = server.admin("POST", f"/webhooks/{delivery['id']}/redeliver", json={})
    assert resp.json()["webhook"]["status"] == "delivered" and resp.json()["webhook"]["next_attempt_at"] is None
    event = server.sandbox.outbox.get(delivery["id"])["payload"].encode()   # as sent: the listing masks digit runs
    assert [r["body"] for r in receiver.requests].count(event) == 2   # refused once, then taken
    server.advance("P7D")
    after = next(d for d in server.webhooks() if d["id"] == delivery["id"])
    assert len(after["attempts"]) == 2 and after["status"] == "delivered"
    assert [r["body"] for r in receiver.requests].count(event) == 2
