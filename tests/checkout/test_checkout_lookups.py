"""What a payment looks up by its card comes from an index and reads only what it finds: a
merchant-initiated payment that names neither a previous payment nor an instrument used by a
customer-initiated one finds its series' first payment (the answer depends on that payment's
3-D Secure request), and a customer's payment finds the stored card it reuses, however many other
customers pay with the same test card."""
import json
import pickle

from simulator import create_app
from simulator.core.store import MemoryStore

KEY = {"Authorization": "Bearer sk_sbox_" + "s" * 27, "Content-Type": "application/json"}
CARD = {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030, "cvv": "100"}


def test_a_mit_by_card_alone_finds_the_series_first_payment_without_reading_the_others(monkeypatch, store_reads):
    monkeypatch.setattr(MemoryStore, "HOT", 8)
    app = create_app({"seed": 4, "webhooks": "manual", "clock": {"start": "2026-01-01T00:00:00Z"}})
    http = app.test_client()

    def pay(body):
        resp = http.post("/checkout/payments", data=json.dumps(body), headers=KEY)
        assert resp.status_code in (201, 202), resp.get_data(True)
        return resp.get_json()

    # the series' first payment: 3-D Secure asked without the mandate indicator, so Checkout
    # soft-declines the merchant-initiated ones that follow it (20154)
    cit = pay({"source": CARD, "amount": 1000, "currency": "EUR", "payment_type": "Recurring",
               "3ds": {"enabled": True, "challenge_indicator": "no_preference"}})
    assert http.post(f"/_sandbox/hosted/checkout/{cit['id']}", json={"outcome": "approve"}).status_code == 200
    store = app.extensions["sandbox"].store
    other = pay({"source": {**CARD, "number": "5436031030606378"}, "amount": 500, "currency": "EUR",
                 "payment_type": "Recurring"})
    template = pickle.dumps(store.get("checkout", "payment", other["id"]))
    tenant = store.tenant_of("checkout", "payment", other["id"])
    for i in range(3000):   # customer-initiated payments of other cards
        payment = pickle.loads(template)
        payment["id"] = f"pay_{i:026d}"
        payment["card_fingerprint"] = f"F{i}"
        store.put("checkout", "payment", payment["id"], payment, tenant)
    store.compact()
    peeked = store_reads(store, "_peek").keys

    mit = pay({"source": CARD, "amount": 1000, "currency": "EUR", "payment_type": "Recurring",
               "merchant_initiated": True})
    assert mit["response_code"] == "20154" and not mit["approved"]
    assert all(key[1] != "payment" for key in peeked)
    # another card's merchant-initiated payment starts no series here: approved
    assert pay({"source": {**CARD, "number": "4543474002249996"}, "amount": 1000, "currency": "EUR",
                "payment_type": "Recurring", "merchant_initiated": True})["approved"]


def test_a_customers_payment_reuses_its_stored_card_without_reading_other_customers_cards(monkeypatch, store_reads):
    monkeypatch.setattr(MemoryStore, "HOT", 8)
    app = create_app({"seed": 4, "webhooks": "manual", "clock": {"start": "2026-01-01T00:00:00Z"}})
    http = app.test_client()

    def pay(email, card=CARD):
        resp = http.post("/checkout/payments", headers=KEY, data=json.dumps({
            "source": card, "amount": 1000, "currency": "EUR", "payment_type": "Recurring",
            "customer": {"email": email}}))
        assert resp.status_code == 201 and resp.get_json()["approved"], resp.get_data(True)
        return resp.get_json()

    first = pay("ada@example.com")
    for i in range(300):   # every other customer pays with the same test card
        pay(f"customer-{i}@example.com")
    store = app.extensions["sandbox"].store
    store.compact()
    watched = store_reads(store, "_peek", "_live")
    read = watched.keys
    again = pay("ada@example.com")
    assert again["source"]["id"] == first["source"]["id"]   # Ada's card, stored once
    instruments = {key for key in read if key[1] == "instrument"}
    assert instruments == {("checkout", "instrument", first["source"]["id"])}
    watched.clear()
    other = pay("grace@example.com", {**CARD, "expiry_year": 2031})   # another expiry: a card of its own
    assert other["source"]["id"] != first["source"]["id"]
    assert all(key[1] != "instrument" or key[2] == other["source"]["id"] for key in read)
