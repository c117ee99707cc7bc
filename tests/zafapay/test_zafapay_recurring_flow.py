"""The seed guide's recurring flow, end to end, with a plain `requests` client."""
from __future__ import annotations

from zafapay_helpers import (api, initial_payment_saved, pay_on_page, verify_signature, webhooks_of,  # noqa: F401
                             zp)


def test_seed_guide_flow(zp, api, receiver):
    customer = "user_1001"
    # 1. initial payment with save_card: pending, payment_url, no pmi_ yet
    resp = api.pay(amount=10.00, currency="usd", customer_id=customer, save_card=True, external_id="order-1")
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["payment_type"] == "initial"
    assert created["status"] == "pending"
    assert created["id"].startswith("req_")
    assert created["payment_url"].startswith(zp.url + "/zafapay/checkout/")
    assert "payment_method_id" not in created
    assert api.cards(customer) == []

    # 2. the customer pays on the hosted page: a real HTML form submitted over HTTP
    page = pay_on_page(created["payment_url"], "pay")
    assert page.status_code == 200
    assert 'data-status="completed"' in page.text

    # 3. the payment.succeeded webhook carries the pmi_ and is signed with the whsec_
    zp.flush()
    (event, raw), = webhooks_of(receiver, "payment.succeeded")
    assert verify_signature(raw["body"], raw["headers"]["X-Zafapay-Signature-Sandbox"])
    assert not verify_signature(raw["body"], raw["headers"]["X-Zafapay-Signature-Sandbox"], "whsec_other")
    assert event["status"] == "succeeded"
    assert event["save_card"] is True
    assert event["is_recurring"] is False
    assert event["customer_id"] == customer
    assert event["amount"] == "10.00"
    pmi = event["payment_method_id"]
    assert pmi.startswith("pmi_")
    stored = {"user_1001": pmi}          # the merchant persists payment_method_id

    # 4. the saved card is listed under that customer_id
    (card,) = api.cards(customer)
    assert card["id"] == pmi and card["status"] == "active" and card["is_default"] is True
    assert card["card"]["last4"] == "4242" and card["card"]["brand"] == "visa"
    assert card["blocked_reason"] is None

    # 5. a recurring charge: processed at once, no payment_url, is_recurring in the webhook
    resp = api.pay(amount=9.99, currency="usd", customer_id=customer, payment_method_id=stored[customer])
    assert resp.status_code == 201, resp.text
    charge = resp.json()
    assert charge["payment_type"] == "recurring"
    assert charge["status"] == "completed"
    assert "payment_url" not in charge
    assert charge["transaction_id"].startswith("tx_")
    assert charge["payment_method_id"] == pmi
    zp.flush()
    recurring = [e for e, _ in webhooks_of(receiver, "payment.succeeded") if e["transaction_id"] == charge["transaction_id"]]
    assert len(recurring) == 1
    assert recurring[0]["is_recurring"] is True
    assert recurring[0]["payment_method_id"] == pmi
    assert "save_card" not in recurring[0]
    got = api.get(f"/v1/payments/{charge['transaction_id']}").json()
    assert got["status"] == "completed" and got["is_recurring"] is True and got["amount"] == "9.99"

    # 6. block -> charge fails -> unblock -> charge succeeds
    resp = api.post(f"/v1/customers/payment-methods/{pmi}/block", {"reason": "suspected fraud"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "blocked" and resp.json()["blocked_reason"] == "suspected fraud"
    assert api.cards(customer)[0]["status"] == "blocked"
    resp = api.pay(customer_id=customer, payment_method_id=pmi)
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "payment_method_blocked"
    resp = api.post(f"/v1/customers/payment-methods/{pmi}/unblock")
    assert resp.status_code == 200 and resp.json()["status"] == "active"
    assert api.cards(customer)[0]["blocked_reason"] is None
    assert api.pay(customer_id=customer, payment_method_id=pmi).status_code == 201

    # 7. detach -> charge fails and the card is gone; it cannot be restored
    resp = api.post(f"/v1/customers/payment-methods/{pmi}/detach")
    assert resp.status_code == 200 and resp.json()["status"] == "detached"
    assert api.cards(customer) == []
    resp = api.pay(customer_id=customer, payment_method_id=pmi)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "payment_method_detached"
    resp = api.post(f"/v1/customers/payment-methods/{pmi}/unblock")
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "payment_method_detached"
    assert api.cards(customer) == []


def test_card_expiring_on_the_virtual_clock_fails_with_expired_card(zp, api, receiver):
    pmi = initial_payment_saved(api, zp, "user_exp", number="4242424242424242", exp_month=2, exp_year=2026)
    assert api.pay(customer_id="user_exp", payment_method_id=pmi).status_code == 201
    zp.advance("P60D")   # 2026-03-02: the card ran out at the end of February
    resp = api.pay(customer_id="user_exp", payment_method_id=pmi)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "expired_card" and error["type"] == "payment_error"
    failed = api.get(f"/v1/payments/{error['transaction_id']}").json()
    assert failed["status"] == "failed" and failed["error_code"] == "expired_card"
    zp.flush()
    (event, _), = webhooks_of(receiver, "payment.failed")
    assert event["error"]["code"] == "expired_card" and event["error"]["category"] == "hard_decline"
    assert event["is_recurring"] is True
    # an expired card stays listed as active: only the charge is declined
    assert api.cards("user_exp")[0]["status"] == "active"


def test_flow_without_recurring_support(zp, api):
    resp = api.pay(customer_id="user_nr", save_card=True, flow_id="flow_no_recurring")
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "recurring_not_supported"
    pmi = initial_payment_saved(api, zp, "user_nr")
    resp = api.pay(customer_id="user_nr", payment_method_id=pmi, flow_id="flow_no_recurring")
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "recurring_not_supported"
    # a one-off payment on that flow is fine
    assert api.pay(flow_id="flow_no_recurring").status_code == 201


def test_same_customer_id_same_card_list(zp, api):
    first = initial_payment_saved(api, zp, "cust_42")
    second = initial_payment_saved(api, zp, "cust_42", number="5555555555554444", exp_month=5, exp_year=2030)
    initial_payment_saved(api, zp, "cust_43")
    listed = api.cards("cust_42")
    assert [c["id"] for c in listed] == [second, first]      # newest first
    assert [c["is_default"] for c in listed] == [False, True]
    assert listed[0]["card"]["brand"] == "mastercard"
    assert len(api.cards("cust_43")) == 1
    assert api.cards("nobody") == []
    # a pmi_ of another customer is not usable under this customer_id
    resp = api.pay(customer_id="cust_43", payment_method_id=first)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    # detaching the default promotes the most recent remaining card
    api.post(f"/v1/customers/payment-methods/{first}/detach")
    (only,) = api.cards("cust_42")
    assert only["id"] == second and only["is_default"] is True


def test_recurring_decline_magic_values(zp, api, receiver):
    pmi = initial_payment_saved(api, zp, "dunning", number="4000000000000341", exp_month=12, exp_year=2030)
    resp = api.pay(customer_id="dunning", payment_method_id=pmi)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "card_declined"
    good = initial_payment_saved(api, zp, "poor")
    resp = api.pay(customer_id="poor", payment_method_id=good, amount=20.51)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "insufficient_funds"
    assert api.pay(customer_id="poor", payment_method_id=good, amount=20.50).status_code == 201


def test_manual_capture_recurring_then_capture(zp, api, receiver):
    pmi = initial_payment_saved(api, zp, "cap")
    resp = api.pay(customer_id="cap", payment_method_id=pmi, amount=30.00, capture_method="manual")
    assert resp.status_code == 201 and resp.json()["status"] == "authorized"
    tx = resp.json()["transaction_id"]
    zp.flush()
    assert [e for e, _ in webhooks_of(receiver) if e["transaction_id"] == tx] == []
    resp = api.post(f"/v1/payments/{tx}/capture", {"amount": 25.00})
    assert resp.status_code == 200 and resp.json() == {"id": tx, "status": "completed", "amount": 25.0}
    zp.flush()
    (event,) = [e for e, _ in webhooks_of(receiver, "payment.succeeded") if e["transaction_id"] == tx]
    assert event["amount"] == "25.00" and event["is_recurring"] is True
