"""Auth, tenants, validation, error envelope, capture/void/refund, tokens and idempotency."""
from __future__ import annotations

import json
import threading

import pytest
import requests

from simulator.testing import SandboxServer, WebhookReceiver
from zafapay_helpers import (KEY, OTHER_KEY, ZafaPay, api, config, initial_payment_saved,  # noqa: F401
                             webhooks_of, zp)

# every response of this flow is checked against the provider's OpenAPI document
pytestmark = [pytest.mark.xdist_group("contract-zafapay"), pytest.mark.usefixtures("contract_checked")]


def _envelope(resp, status, code):
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    error = resp.json()["error"]
    assert error["code"] == code
    assert error["request_id"].startswith("req_")
    assert isinstance(error["message"], str) and error["message"]
    return error


# -- auth and tenants ------------------------------------------------------------------------
def test_any_well_formed_key_is_its_own_tenant(zp, api):
    pmi = initial_payment_saved(api, zp, "shared_customer")
    other = ZafaPay(zp.url, OTHER_KEY)
    assert other.cards("shared_customer") == []
    resp = other.pay(customer_id="shared_customer", payment_method_id=pmi)
    assert _envelope(resp, 404, "not_found")["param"] == "payment_method_id"
    charge = api.pay(customer_id="shared_customer", payment_method_id=pmi).json()
    _envelope(other.get(f"/v1/payments/{charge['transaction_id']}"), 404, "not_found")
    _envelope(other.get(f"/v1/payments/{charge['id']}"), 404, "not_found")
    _envelope(other.post(f"/v1/customers/payment-methods/{pmi}/block", {"reason": "x"}), 404, "not_found")
    assert api.get(f"/v1/payments/{charge['transaction_id']}").status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc", "Bearer short", "Bearer has space inside",
                                    "Bearer pk_test_abcdefgh12345678"])
def test_missing_or_malformed_key_is_401(zp, header):
    headers = {} if header is None else {"Authorization": header}
    resp = requests.post(zp.url + "/zafapay/v1/payments", json={"amount": 1, "currency": "usd"},
                         headers=headers, timeout=10)
    error = _envelope(resp, 401, "unauthorized")
    assert error["type"] == "authentication_error"


def test_configured_api_keys_reject_other_keys():
    with SandboxServer(config(api_keys=[KEY])) as srv:
        assert ZafaPay(srv.url, KEY).pay().status_code == 201
        resp = ZafaPay(srv.url, "zp_test_not_configured_key").pay()
        assert _envelope(resp, 401, "unauthorized")["type"] == "authentication_error"
        # configuring at run time applies at once
        put = requests.put(srv.url + "/_sandbox/config", json={"providers": {"zafapay": {"api_keys": [OTHER_KEY]}}},
                           timeout=10)
        assert put.status_code == 200, put.text
        assert ZafaPay(srv.url, KEY).pay().status_code == 401
        assert ZafaPay(srv.url, OTHER_KEY).pay().status_code == 201


# -- validation: the envelope, never a 500 ---------------------------------------------------
@pytest.mark.parametrize("body,param", [
    ({}, "amount"),
    ({"currency": "usd"}, "amount"),
    ({"amount": "10.00", "currency": "usd"}, "amount"),
    ({"amount": True, "currency": "usd"}, "amount"),
    ({"amount": 10, "currency": "USD"}, "currency"),
    ({"amount": 10, "currency": "usd", "save_card": True}, "customer_id"),
    ({"amount": 10, "currency": "usd", "save_card": "yes", "customer_id": "c"}, "save_card"),
    ({"amount": 10, "currency": "usd", "payment_method_id": "pmi_abc"}, "customer_id"),
    ({"amount": 10, "currency": "usd", "payment_method_id": "pmi_abc", "customer_id": "c", "save_card": True},
     "payment_method_id"),
    ({"amount": 10, "currency": "usd", "payment_method_id": "card_1", "customer_id": "c"}, "payment_method_id"),
    ({"amount": 10, "currency": "usd", "metadata": "x"}, "metadata"),
    ({"amount": 10, "currency": "usd", "email": "not-an-email"}, "email"),
    ({"amount": 10, "currency": "usd", "capture_method": "later"}, "capture_method"),
])
def test_bad_create_bodies_are_validation_errors(zp, api, body, param):
    error = _envelope(api.post("/v1/payments", body), 400, "validation_error")
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert any(d["param"] == param for d in error["details"])


@pytest.mark.parametrize("body,code", [
    ({"amount": 0, "currency": "usd"}, "invalid_amount"),
    ({"amount": -5, "currency": "usd"}, "invalid_amount"),
    ({"amount": 10.123, "currency": "usd"}, "invalid_amount"),
    ({"amount": 10.5, "currency": "jpy"}, "invalid_amount"),
    ({"amount": 0.49, "currency": "usd"}, "amount_below_minimum"),
    ({"amount": 100000.01, "currency": "usd"}, "amount_above_maximum"),
    ({"amount": 10, "currency": "eur"}, "unsupported_currency"),
    ({"amount": 10, "currency": "usd", "payment_method": "depot"}, "not_supported"),
])
def test_amount_and_currency_rules(zp, api, body, code):
    _envelope(api.post("/v1/payments", body), 400, code)


def test_flow_resolution_errors(zp, api):
    assert _envelope(api.pay(flow_id="flow_missing"), 404, "flow_not_found")["param"] == "flow_id"
    _envelope(api.pay(flow_id="flow_inactive"), 400, "flow_not_active")


def test_unknown_ids_are_404(zp, api):
    _envelope(api.get("/v1/payments/tx_doesnotexist"), 404, "not_found")
    _envelope(api.get("/v1/payments/req_doesnotexist"), 404, "not_found")
    _envelope(api.get("/v1/payments/whatever"), 404, "not_found")
    _envelope(api.post("/v1/payments/tx_nope/refund", {}), 404, "not_found")
    _envelope(api.post("/v1/customers/payment-methods/pmi_nope/block", {"reason": "r"}), 404, "not_found")
    _envelope(api.pay(customer_id="c", payment_method_id="pmi_nope"), 404, "not_found")
    _envelope(api.get("/v1/nothing-here"), 404, "not_found")


GARBAGE = [b"", b"{", b"[]", b"null", b"42", b'"text"', b"\xff\xfe", b'{"amount": NaN, "currency": "usd"}',
           b'{"amount": 1e400, "currency": "usd"}', b'{"amount": {"x": 1}, "currency": ["usd"]}',
           b'{"amount": 10, "currency": "usd", "customer_id": "", "save_card": true}',
           b'{"amount": 10, "currency": "usd", "token": "tok_x", "save_card": true, "customer_id": "\\u0000"}',
           b'{"amount": 10, "currency": "usd", "return_url": "javascript:alert(1)"}',
           b'{"reason": 12}', b'{"amount": "all"}', b'{"card": {"number": 4242424242424242}}',
           b'{"card": {"number": "4242424242424242", "exp_month": 13, "exp_year": 2030}}',
           b"[" * 100000, b'{"metadata": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001]


def test_no_500_for_any_bad_input(zp, api):
    pmi = initial_payment_saved(api, zp, "fuzz")
    tx = api.pay(customer_id="fuzz", payment_method_id=pmi).json()["transaction_id"]
    paths = ["/v1/payments", f"/v1/payments/{tx}/capture", f"/v1/payments/{tx}/void", f"/v1/payments/{tx}/refund",
             f"/v1/customers/payment-methods/{pmi}/block", "/v1/tokens"]
    for path in paths:
        for raw in GARBAGE:
            resp = api.http.post(api.base + path, data=raw, headers={"Content-Type": "application/json"}, timeout=10)
            assert resp.status_code < 500, (path, raw, resp.status_code, resp.text)
            assert "error" in resp.json() or resp.status_code in (200, 201), (path, raw, resp.text)
    for path in ["/v1/payments/%00", "/v1/customers/%F0%9F%92%B3/payment-methods", "/v1/payments/" + "x" * 3000]:
        resp = api.get(path)
        assert resp.status_code < 500, (path, resp.text)
    resp = api.http.put(api.base + "/v1/payments", json={}, timeout=10)
    _envelope(resp, 405, "method_not_allowed")
    resp = api.http.post(api.base + "/v1/payments", data=b"x" * (1024 * 1024 + 10), timeout=10)
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "validation_error"


def test_block_requires_a_reason(zp, api):
    pmi = initial_payment_saved(api, zp, "blk")
    error = _envelope(api.post(f"/v1/customers/payment-methods/{pmi}/block", {}), 400, "validation_error")
    assert error["param"] == "reason"
    _envelope(api.post(f"/v1/customers/payment-methods/{pmi}/block", {"reason": ""}), 400, "validation_error")
    _envelope(api.post(f"/v1/customers/payment-methods/{pmi}/unblock"), 400, "invalid_status")
    assert api.post(f"/v1/customers/payment-methods/{pmi}/block", {"reason": "fraud"}).status_code == 200
    _envelope(api.post(f"/v1/customers/payment-methods/{pmi}/block", {"reason": "again"}), 400, "invalid_status")
    # DELETE is an alias of detach; a detached card answers payment_method_detached to everything
    assert api.http.delete(f"{api.base}/v1/customers/payment-methods/{pmi}", timeout=10).json()["status"] == "detached"
    _envelope(api.post(f"/v1/customers/payment-methods/{pmi}/detach"), 400, "payment_method_detached")
    _envelope(api.post(f"/v1/customers/payment-methods/{pmi}/block", {"reason": "x"}), 400, "payment_method_detached")


# -- capture, void, refund -------------------------------------------------------------------
def test_refunds_partial_then_full(zp, api, receiver):
    pmi = initial_payment_saved(api, zp, "ref")
    tx = api.pay(customer_id="ref", payment_method_id=pmi, amount=50.00).json()["transaction_id"]
    resp = api.post(f"/v1/payments/{tx}/refund", {"amount": 20.00, "reason": "requested_by_customer"})
    assert resp.status_code == 200, resp.text
    first = resp.json()
    assert first["id"].startswith("orf_") and first["transaction_id"] == tx
    assert first["amount"] == "20.00" and first["status"] == "succeeded" and first["refund_fee"] == "0.00"
    assert first["psp_refund_id"].startswith("re_")
    got = api.get(f"/v1/payments/{tx}").json()
    assert got["status"] == "partially_refunded" and got["amount_refunded"] == "20.00"
    _envelope(api.post(f"/v1/payments/{tx}/refund", {"amount": 30.01}), 400, "invalid_amount")
    _envelope(api.post(f"/v1/payments/{tx}/refund", {"amount": 1, "currency": "sgd"}), 400, "validation_error")
    assert api.post(f"/v1/payments/{tx}/refund", {}).json()["amount"] == "30.00"
    got = api.get(f"/v1/payments/{tx}").json()
    assert got["status"] == "refunded" and got["amount_refunded"] == "50.00" and len(got["refunds"]) == 2
    _envelope(api.post(f"/v1/payments/{tx}/refund", {}), 400, "invalid_status")
    zp.flush()
    refunded = [e for e, _ in webhooks_of(receiver, "payment.refunded")]
    assert [e["amount_refunded"] for e in refunded] == ["20.00", "50.00"]
    assert all(e["status"] == "refunded" for e in refunded)


def test_void_and_capture_rules(zp, api, receiver):
    pmi = initial_payment_saved(api, zp, "auth")
    tx = api.pay(customer_id="auth", payment_method_id=pmi, capture_method="manual").json()["transaction_id"]
    _envelope(api.post(f"/v1/payments/{tx}/refund", {}), 400, "invalid_status")
    _envelope(api.post(f"/v1/payments/{tx}/capture", {"amount": 10.01}), 400, "invalid_amount")
    resp = api.post(f"/v1/payments/{tx}/void")
    assert resp.status_code == 200 and resp.json()["status"] == "canceled"
    _envelope(api.post(f"/v1/payments/{tx}/capture"), 400, "invalid_status")
    _envelope(api.post(f"/v1/payments/{tx}/void"), 400, "invalid_status")
    zp.flush()
    (event, _), = webhooks_of(receiver, "payment.canceled")
    assert event["transaction_id"] == tx and event["status"] == "canceled"
    done = api.pay(customer_id="auth", payment_method_id=pmi).json()["transaction_id"]
    _envelope(api.post(f"/v1/payments/{done}/capture"), 400, "invalid_status")
    _envelope(api.post(f"/v1/payments/{done}/void"), 400, "invalid_status")


def test_a_partial_capture_makes_the_captured_amount_the_payment_amount_everywhere(zp, api, receiver):
    pmi = initial_payment_saved(api, zp, "partial")
    created = api.pay(customer_id="partial", payment_method_id=pmi, amount=10.00, capture_method="manual").json()
    tx = created["transaction_id"]
    authorized = api.get(f"/v1/payments/{tx}").json()
    assert (authorized["status"], authorized["amount"]) == ("authorized", "10.00")
    resp = api.post(f"/v1/payments/{tx}/capture", {"amount": 4.00})
    assert resp.status_code == 200 and resp.json() == {"id": tx, "status": "completed", "amount": 4.0}

    # the released 6.00 is gone: what GET shows as amount is what can be refunded
    captured = api.get(f"/v1/payments/{tx}").json()
    assert (captured["amount"], captured["original_amount"], captured["amount_refunded"]) == ("4.00", "4.00", "0.00")
    assert "amount_captured" not in captured
    assert api.get(f"/v1/payments/{created['id']}").json() == captured
    _envelope(api.post(f"/v1/payments/{tx}/refund", {"amount": 4.01}), 400, "invalid_amount")
    assert api.post(f"/v1/payments/{tx}/refund", {"amount": 1.50}).json()["amount"] == "1.50"
    assert api.post(f"/v1/payments/{tx}/refund", {}).json()["amount"] == "2.50"
    refunded = api.get(f"/v1/payments/{tx}").json()
    assert (refunded["status"], refunded["amount"], refunded["amount_refunded"]) == ("refunded", "4.00", "4.00")
    assert api.post(f"/_sandbox/payments/{tx}/chargeback").json() == refunded   # simulator-only control

    # every webhook of the transaction tells the same amount, so amount == amount_refunded is a full refund
    zp.flush()
    events = [(e["event"], e["amount"], e.get("amount_refunded")) for e, _ in webhooks_of(receiver)
              if e["transaction_id"] == tx]
    assert events == [("payment.succeeded", "4.00", None), ("payment.refunded", "4.00", "1.50"),
                      ("payment.refunded", "4.00", "4.00"), ("payment.chargeback", "4.00", None)]


def test_get_payment_by_request_id_and_pending_state(zp, api):
    created = api.pay(amount=12.34, currency="sgd", external_id="ord-9", metadata={"plan": "pro"}).json()
    assert created["payment_type"] == "single"
    pending = api.get(f"/v1/payments/{created['id']}").json()
    assert pending["status"] == "pending" and pending["id"] == created["id"]
    assert pending["card_last4"] is None and pending["amount"] == "12.34" and pending["amount_refunded"] == "0.00"
    assert pending["metadata"] == {"plan": "pro"} and pending["external_id"] == "ord-9"
    _envelope(api.post(f"/v1/payments/{created['id']}/refund", {}), 400, "invalid_status")
    zp.hosted("zafapay", created["id"], outcome="approve")
    paid = api.get(f"/v1/payments/{created['id']}").json()
    assert paid["status"] == "completed" and paid["id"].startswith("tx_") and paid["request_id"] == created["id"]
    assert paid["payment_method_id"] is None and paid["is_recurring"] is False
    assert api.get(f"/v1/payments/{paid['id']}").json() == paid


# -- tokens (S2S) ----------------------------------------------------------------------------
PK = "pk_test_5f2a9c1e7d3b4a60"


def _token(zp, number="4242424242424242", **extra):
    resp = requests.post(zp.url + "/zafapay/v1/tokens", headers={"Authorization": f"Bearer {PK}"}, timeout=10,
                         json={"card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123", **extra}})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_token_payment_and_single_use(zp, api, receiver):
    tok = _token(zp)
    assert tok["id"].startswith("tok_") and tok["card"] == {"bin": "424242", "last4": "4242", "brand": "visa",
                                                             "exp_month": 12, "exp_year": 2030}
    assert tok["expires_at"] == "2026-01-01T00:30:00.000Z"
    resp = api.pay(token=tok["id"], customer_id="s2s", save_card=True)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["payment_type"] == "token" and body["status"] == "completed" and "payment_url" not in body
    _envelope(api.pay(token=tok["id"]), 400, "payment_token_already_used")
    zp.flush()
    (event, _), = webhooks_of(receiver, "payment.succeeded")
    assert event["save_card"] is True and event["payment_method_id"] == api.cards("s2s")[0]["id"]
    # publishable keys are good for /v1/tokens only
    resp = requests.get(zp.url + f"/zafapay/v1/payments/{body['transaction_id']}",
                        headers={"Authorization": f"Bearer {PK}"}, timeout=10)
    _envelope(resp, 401, "unauthorized")


@pytest.mark.parametrize("field,value", [
    ("exp_month", 1.9), ("exp_year", 2030.99),          # int() would keep 1 and 2030: another expiry
    ("exp_month", "\uff11\uff12"), ("exp_year", "\u0662\u0660\u0663\u0660"),   # fullwidth, Arabic-Indic
    ("cvc", "123\n"), ("cvc", "\uff11\uff12\uff13"),
])
def test_card_fields_take_whole_ascii_numbers_only(zp, field, value):
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123", field: value}
    resp = requests.post(zp.url + "/zafapay/v1/tokens", headers={"Authorization": f"Bearer {PK}"}, timeout=10,
                         json={"card": card})
    assert _envelope(resp, 400, "validation_error")["param"] == f"card.{field}"
    assert zp.sandbox.store.list("zafapay", "token", PK) == []   # nothing half-written


def test_token_expiry_declines_and_3ds(zp, api):
    old = _token(zp)
    zp.advance("PT31M")
    _envelope(api.pay(token=old["id"]), 400, "payment_token_expired")
    declined = api.pay(token=_token(zp, "4000000000009995")["id"])
    error = _envelope(declined, 400, "insufficient_funds")
    assert error["type"] == "payment_error" and error["transaction_id"].startswith("tx_")
    resp = api.pay(token=_token(zp, "4000000000003220")["id"], return_url="https://merchant.example/back")
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] == "requires_action" and body["redirect_url"].startswith(zp.url)
    page = requests.get(body["redirect_url"], timeout=10)
    assert page.status_code == 200 and 'id="challenge"' in page.text
    from zafapay_helpers import submit_page
    back = submit_page(requests.Session(), body["redirect_url"], page.text, "pass", allow_redirects=False)
    assert back.status_code == 302
    assert back.headers["Location"].startswith("https://merchant.example/back?status=succeeded&id=req_")
    assert api.get(f"/v1/payments/{body['transaction_id']}").json()["status"] == "completed"
    bad = requests.post(zp.url + "/zafapay/v1/tokens", headers={"Authorization": f"Bearer {PK}"}, timeout=10,
                        json={"card": {"number": "4242424242424241", "exp_month": 12, "exp_year": 2030}})
    _envelope(bad, 400, "validation_error")
    past = requests.post(zp.url + "/zafapay/v1/tokens", headers={"Authorization": f"Bearer {PK}"}, timeout=10,
                         json={"card": {"number": "4242424242424242", "exp_month": 1, "exp_year": 2020}})
    _envelope(past, 400, "validation_error")


# -- idempotency -----------------------------------------------------------------------------
def test_idempotency_replay_mismatch_and_concurrency(zp, api):
    pmi = initial_payment_saved(api, zp, "idem")
    body = {"amount": 15.00, "currency": "usd", "customer_id": "idem", "payment_method_id": pmi}
    first = api.post("/v1/payments", body, headers={"Idempotency-Key": "k-1"})
    again = api.post("/v1/payments", body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    _envelope(api.post("/v1/payments", {**body, "amount": 16.00}, headers={"Idempotency-Key": "k-1"}),
              400, "idempotency_key_mismatch")
    # a refused request is not stored: the corrected retry with the same key is processed
    _envelope(api.post("/v1/payments", {**body, "currency": "USD"}, headers={"Idempotency-Key": "k-2"}),
              400, "validation_error")
    assert api.post("/v1/payments", body, headers={"Idempotency-Key": "k-2"}).status_code == 201
    # keys are per tenant
    other = ZafaPay(zp.url, OTHER_KEY)
    assert other.pay(headers={"Idempotency-Key": "k-1"}).status_code == 201

    # twenty concurrent requests with one key make one charge
    results = []

    def charge():
        results.append(api.post("/v1/payments", {**body, "amount": 17.00}, headers={"Idempotency-Key": "k-race"}))
    threads = [threading.Thread(target=charge) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = {r.json()["transaction_id"] for r in results if r.status_code == 201}
    assert len(ok) == 1
    assert all(r.status_code in (201, 409) for r in results)
    assert all(r.json()["error"]["code"] == "idempotency_key_in_use" for r in results if r.status_code == 409)
    (tx,) = ok
    charged = [p for p in zp.sandbox.store.list("zafapay", "payment", KEY) if p["amount"] == 1700]
    assert [p["id"] for p in charged] == [tx]


def test_concurrent_refunds_never_over_refund(zp, api):
    pmi = initial_payment_saved(api, zp, "race")
    tx = api.pay(customer_id="race", payment_method_id=pmi, amount=10.00).json()["transaction_id"]
    results = []

    def refund():
        results.append(api.post(f"/v1/payments/{tx}/refund", {"amount": 1.00}))
    threads = [threading.Thread(target=refund) for _ in range(15)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.status_code == 200 for r in results) == 10
    got = api.get(f"/v1/payments/{tx}").json()
    assert got["status"] == "refunded" and got["amount_refunded"] == "10.00" and len(got["refunds"]) == 10


def test_same_seed_same_requests_same_bytes():
    def run():
        rcv = WebhookReceiver().start()
        try:
            with SandboxServer(config(rcv.url)) as srv:
                api = ZafaPay(srv.url)
                out = [api.pay(customer_id="det", save_card=True).text]
                out.append(srv.hosted("zafapay", json.loads(out[0])["id"]).text)
                pmi = json.loads(out[1])["payment_method_id"]
                out.append(api.pay(customer_id="det", payment_method_id=pmi, amount=3.51).text)
                out.append(api.pay(customer_id="det", payment_method_id=pmi).text)
                out.append(api.get("/v1/customers/det/payment-methods").text)
                srv.flush()
                # deliveries of different payments go out in parallel: their arrival order is free
                return [o.replace(srv.url, "<sandbox>") for o in out], sorted(r["body"] for r in rcv.requests)
        finally:
            rcv.stop()
    assert run() == run()
