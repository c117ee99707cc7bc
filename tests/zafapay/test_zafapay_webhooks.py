"""Webhooks: the five events, their payload, HMAC-SHA256 signatures and the retry schedule."""
from __future__ import annotations

import json

import requests

from simulator.testing import SandboxServer, WebhookReceiver
from zafapay_helpers import (SECRET, ZafaPay, api, config, initial_payment_saved, verify_signature,  # noqa: F401
                             webhooks_of, zp)

DOCUMENTED = {"event", "transaction_id", "merchant_id", "merchant_name", "status", "amount", "currency",
              "payment_method", "is_recurring", "external_id", "product_name", "customer_id", "email", "tel",
              "card_brand", "card_last4", "cardholder_name", "card_exp_month", "card_exp_year", "metadata",
              "created_at", "timestamp"}


def test_five_events_with_documented_payload(zp, api, receiver):
    pmi = initial_payment_saved(api, zp, "events")                       # payment.succeeded (initial)
    tx = api.pay(customer_id="events", payment_method_id=pmi, amount=40.00, external_id="inv-7",
                 product_name="Pro plan", email="a@example.com", metadata={"k": "v"}).json()["transaction_id"]
    api.post(f"/v1/payments/{tx}/refund", {"amount": 5.00})                # payment.refunded
    resp = api.post(f"/_sandbox/payments/{tx}/chargeback")  # simulator-only control
    assert resp.status_code == 200, resp.text                             # payment.chargeback
    auth = api.pay(customer_id="events", payment_method_id=pmi, capture_method="manual").json()["transaction_id"]
    api.post(f"/v1/payments/{auth}/void")                                 # payment.canceled
    pending = api.pay().json()["id"]
    zp.hosted("zafapay", pending, outcome="decline")                      # payment.failed
    zp.flush()
    events = {e["event"]: e for e, _ in webhooks_of(receiver)}
    assert set(events) == {"payment.succeeded", "payment.failed", "payment.canceled", "payment.refunded",
                           "payment.chargeback"}
    for name, event in events.items():
        assert DOCUMENTED <= set(event), (name, DOCUMENTED - set(event))
        assert event["status"] == name.split(".")[1]
        assert event["transaction_id"].startswith("tx_")
        assert event["merchant_id"] and event["merchant_name"]
    assert events["payment.refunded"]["amount_refunded"] == "5.00"
    assert events["payment.refunded"]["external_id"] == "inv-7"
    assert events["payment.refunded"]["product_name"] == "Pro plan"
    assert events["payment.refunded"]["metadata"] == {"k": "v"}
    assert events["payment.refunded"]["is_recurring"] is True
    assert events["payment.failed"]["error"] == {"code": "card_declined", "category": "soft_decline",
                                                  "message": "The card was declined.",
                                                  "recommended_action": "use_different_card"}
    assert events["payment.failed"]["is_recurring"] is False
    assert "payment_method_id" not in events["payment.failed"]      # plain payment: no pmi_
    assert events["payment.chargeback"]["transaction_id"] == tx
    assert api.get(f"/v1/payments/{tx}").json()["status"] == "partially_refunded"   # chargeback keeps status


def test_every_delivery_is_signed_over_the_exact_body(zp, api, receiver):
    initial_payment_saved(api, zp, "sig")
    zp.flush()
    (raw,) = receiver.requests
    assert raw["headers"]["Content-Type"] == "application/json"
    signature = raw["headers"]["X-Zafapay-Signature-Sandbox"]
    assert len(signature) == 64 and signature == signature.lower()
    assert verify_signature(raw["body"], signature)
    # re-serialising the JSON would not match: receivers must sign the raw body
    assert not verify_signature(raw["body"] + b" ", signature)
    assert "X-Zafapay-Signature" not in raw["headers"]


def test_production_header_and_string_error_by_config():
    rcv = WebhookReceiver().start()
    try:
        cfg = config(rcv.url, signature_header="both", webhook_error_format="string")
        with SandboxServer(cfg) as srv:
            api = ZafaPay(srv.url)
            srv.hosted("zafapay", api.pay().json()["id"], outcome="decline")
            srv.flush()
            (raw,) = rcv.requests
            assert verify_signature(raw["body"], raw["headers"]["X-Zafapay-Signature"])
            assert raw["headers"]["X-Zafapay-Signature"] == raw["headers"]["X-Zafapay-Signature-Sandbox"]
            assert json.loads(raw["body"])["error"] == "The card was declined."
    finally:
        rcv.stop()


def test_failing_receiver_is_retried_with_backoff_until_2xx(zp, api, receiver):
    receiver.status = 500
    pmi = initial_payment_saved(api, zp, "retry")
    zp.flush()
    (delivery,) = zp.webhooks(provider="zafapay")
    assert delivery["status"] == "failed" and len(delivery["attempts"]) == 1
    assert delivery["attempts"][0]["status"] == 500
    assert delivery["next_attempt_at"] == "2026-01-01T00:01:00.000Z"      # 1 minute later
    zp.advance("PT1M")
    (delivery,) = zp.webhooks(provider="zafapay")
    assert len(delivery["attempts"]) == 2 and delivery["next_attempt_at"] == "2026-01-01T00:06:00.000Z"
    zp.advance("PT5M")
    (delivery,) = zp.webhooks(provider="zafapay")
    assert len(delivery["attempts"]) == 3 and delivery["next_attempt_at"] == "2026-01-01T00:36:00.000Z"
    receiver.status = 200
    zp.advance("PT30M")
    (delivery,) = zp.webhooks(provider="zafapay")
    assert delivery["status"] == "delivered" and [a["status"] for a in delivery["attempts"]] == [500, 500, 500, 200]
    assert delivery["next_attempt_at"] is None
    assert len(receiver.requests) == 4
    bodies = {r["body"] for r in receiver.requests}
    assert len(bodies) == 1                                            # the same event every time
    assert json.loads(bodies.pop())["payment_method_id"] == pmi
    zp.advance("P1D")
    assert len(receiver.requests) == 4                                  # answered: no more attempts


def test_receiver_that_never_answers_2xx_ends_dead(zp, api, receiver):
    receiver.status = 503
    initial_payment_saved(api, zp, "dead")
    zp.flush()
    zp.advance("P1D")
    (delivery,) = zp.webhooks(provider="zafapay")
    assert delivery["status"] == "dead" and len(delivery["attempts"]) == 6   # first try + 5 retries
    assert delivery["next_attempt_at"] is None


def test_unreachable_receiver_and_custom_schedule():
    cfg = config(webhook_schedule=["PT10S", "PT20S"])
    cfg["providers"]["zafapay"]["webhook_url"] = "http://127.0.0.1:9/unreachable"
    with SandboxServer(cfg) as srv:
        api = ZafaPay(srv.url)
        srv.hosted("zafapay", api.pay().json()["id"])
        srv.flush()
        srv.advance("PT30S")
        (delivery,) = srv.webhooks(provider="zafapay")
        assert delivery["status"] == "dead" and len(delivery["attempts"]) == 3
        assert all(a["error"] for a in delivery["attempts"])


def test_bad_webhook_config_is_refused(zp):
    resp = requests.put(zp.url + "/_sandbox/config", timeout=10,
                        json={"providers": {"zafapay": {"webhook_secret": "not-a-whsec"}}})
    assert resp.status_code == 400
    resp = requests.put(zp.url + "/_sandbox/config", timeout=10,
                        json={"providers": {"zafapay": {"webhook_schedule": ["ten minutes"]}}})
    assert resp.status_code == 400
    masked = requests.get(zp.url + "/_sandbox/config", timeout=10).json()
    assert SECRET not in json.dumps(masked)
