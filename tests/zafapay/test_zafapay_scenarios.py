"""The shipped ZafaPay scenarios, and the scenario effects the ZafaPay machine honours."""
from __future__ import annotations

import os

import pytest
import requests

from simulator.testing import SandboxServer
from zafapay_helpers import ZafaPay, config, initial_payment_saved, pay_on_page, submit_page, webhooks_of

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def scenario(name: str) -> str:
    return os.path.join(ROOT, "scenarios", name)


def _server(rcv, name):
    return SandboxServer(config(rcv.url), scenario_files=[scenario(name)])


def test_renewal_declined_scenario(receiver):
    with _server(receiver, "zafapay-renewal-declined.yaml") as srv:
        api = ZafaPay(srv.url)
        pmi = initial_payment_saved(api, srv, "sub_1")
        assert api.pay(customer_id="sub_1", payment_method_id=pmi).status_code == 201
        second = api.pay(customer_id="sub_1", payment_method_id=pmi)
        assert second.status_code == 400
        error = second.json()["error"]
        assert error["code"] == "insufficient_funds" and error["type"] == "payment_error"
        got = api.get(f"/v1/payments/{error['transaction_id']}").json()
        assert got["status"] == "failed" and got["error_code"] == "insufficient_funds"
        assert api.pay(customer_id="sub_1", payment_method_id=pmi).status_code == 201
        srv.flush()
        (failed, _), = webhooks_of(receiver, "payment.failed")
        assert failed["is_recurring"] is True and failed["error"]["code"] == "insufficient_funds"
        hits = requests.get(srv.url + "/_sandbox/scenarios", timeout=10).json()
        assert "zafapay-renewal-declined" in str(hits)


def test_saved_card_expires_scenario_stops_the_card_for_good(receiver):
    with _server(receiver, "zafapay-saved-card-expires.yaml") as srv:
        api = ZafaPay(srv.url)
        pmi = initial_payment_saved(api, srv, "sub_2")
        for _ in range(2):
            assert api.pay(customer_id="sub_2", payment_method_id=pmi).status_code == 201
        for _ in range(3):   # the third and every later charge
            resp = api.pay(customer_id="sub_2", payment_method_id=pmi)
            assert resp.status_code == 400 and resp.json()["error"]["code"] == "expired_card"
        assert api.cards("sub_2")[0]["status"] == "active"
        fresh = initial_payment_saved(api, srv, "sub_2")
        assert fresh != pmi
        assert api.pay(customer_id="sub_2", payment_method_id=fresh).status_code == 201


def test_webhook_receiver_down_scenario(receiver):
    with _server(receiver, "zafapay-webhook-receiver-down.yaml") as srv:
        api = ZafaPay(srv.url)
        pmi = initial_payment_saved(api, srv, "sub_3")
        tx = api.pay(customer_id="sub_3", payment_method_id=pmi).json()["transaction_id"]
        srv.flush()
        assert [e["is_recurring"] for e, _ in webhooks_of(receiver)] == [False]     # initial arrived
        srv.advance("PT35M")
        (delivery,) = [d for d in srv.webhooks(provider="zafapay") if d["subject"] == tx]
        assert [a["status"] for a in delivery["attempts"]] == [503, 503, 503]
        srv.advance("PT1M")
        (delivery,) = [d for d in srv.webhooks(provider="zafapay") if d["subject"] == tx]
        assert delivery["status"] == "delivered" and len(delivery["attempts"]) == 4
        assert [e["is_recurring"] for e, _ in webhooks_of(receiver)] == [False, True]


def _load(srv, text):
    return requests.put(srv.url + "/_sandbox/scenarios", data=text.encode(), timeout=10,
                        headers={"Content-Type": "application/yaml"})


def test_decline_codes_are_validated_against_zafapay(zp_plain):
    bad = _load(zp_plain, "name: x\nrules:\n  - name: r\n    provider: zafapay\n    effect: {decline: '20051'}\n")
    assert bad.status_code == 400 and "decline" in bad.text
    for code in ("card_declined", "insufficient_funds", "expired_card", "processing_error"):
        ok = _load(zp_plain, f"name: x\nrules:\n  - name: r\n    provider: zafapay\n    effect: {{decline: {code}}}\n")
        assert ok.status_code == 200, ok.text


def test_decline_effect_on_the_hosted_page_and_token_inactive(zp_plain):
    srv = zp_plain
    api = ZafaPay(srv.url)
    assert _load(srv, "name: page-decline\nrules:\n  - name: r\n    provider: zafapay\n    method: POST\n"
                      "    path: /zafapay/checkout/*\n    times: 1\n    effect: {decline: processing_error}\n"
                 ).status_code == 200
    created = api.pay().json()
    page = pay_on_page(created["payment_url"], "pay")
    assert "processing_error" in page.text
    assert api.get(f"/v1/payments/{created['id']}").json()["error_code"] == "processing_error"
    pmi = initial_payment_saved(api, srv, "inactive")
    assert _load(srv, "name: dead-card\nrules:\n  - name: r\n    provider: zafapay\n    path: /zafapay/v1/payments\n"
                      "    match: {customer_id: inactive}\n    times: 1\n    effect: {token: inactive}\n"
                 ).status_code == 200
    for _ in range(2):
        resp = api.pay(customer_id="inactive", payment_method_id=pmi)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "card_declined"


def test_require_3ds_effect(zp_plain):
    srv = zp_plain
    api = ZafaPay(srv.url)
    assert _load(srv, "name: sca\nrules:\n  - name: r\n    provider: zafapay\n    method: POST\n"
                      "    path: /zafapay/checkout/*\n    times: 1\n    effect: {require_3ds: true}\n").status_code == 200
    created = api.pay().json()
    browser = requests.Session()
    page = browser.get(created["payment_url"], timeout=10)
    challenge = submit_page(browser, created["payment_url"], page.text, "pay")   # 4242: no 3DS normally
    assert 'id="challenge"' in challenge.text
    assert 'data-status="completed"' in submit_page(browser, created["payment_url"], challenge.text, "pass").text



@pytest.fixture
def zp_plain():
    srv = SandboxServer(config()).start()
    yield srv
    srv.stop()
