"""Scheduled (dunning) retries of declined merchant-initiated payments, on the virtual clock."""
import json
from pathlib import Path

import pytest
import requests
from checkout_sdk.exception import CheckoutApiException
from checkout_sdk.payments.payments import (CancelScheduledRetryRequest, DowntimeRetryRequest, DunningRetryRequest,
                                            PaymentRetryRequest)

from cko_helpers import KEY, card_source, payment_request, sdk

INSUFFICIENT_FUNDS_CARD = "4544249167673670"   # every authorization: 20051
LOST_CARD = "4941202060999329"                 # 30041, a hard decline: never retried
ROOT = Path(__file__).resolve().parents[2]


def dunning(max_attempts=3, end_after_days=9):
    retry, d = PaymentRetryRequest(), DunningRetryRequest()
    d.enabled, d.max_attempts, d.end_after_days = True, max_attempts, end_after_days
    retry.dunning = d
    return retry


def renewal(api, number="4242424242424242", retry=None, **kw):
    card = card_source(number, cvv=None)
    card.stored = True
    return api.payments.request_payment(payment_request(card, amount=1999, merchant_initiated=True,
                                                        retry=retry or dunning(), reference="INV-7", **kw))


def event_types(srv, pay_id):
    return [d["event_type"] for d in srv.webhooks(provider="checkout") if d["subject"] == pay_id]


@pytest.fixture
def hooked(receiver):
    """Webhooks on, and the shipped scenario that declines each renewal's first attempt."""
    from simulator.testing import DEFAULT_START, SandboxServer
    srv = SandboxServer({"seed": 1, "clock": {"start": DEFAULT_START}, "webhooks": "manual",
                         "providers": {"checkout": {"webhook_url": receiver.url + "/cko"}}},
                        scenario_files=[str(ROOT / "scenarios" / "checkout-renewal-retry-recovers.yaml")]).start()
    yield srv
    srv.stop()


def test_declined_renewal_is_retried_on_schedule_and_succeeds_when_the_scenario_lets_it(hooked):
    api = sdk(hooked.url)
    pay = renewal(api)
    assert pay.http_metadata.status_code == 201
    assert pay.status == "Retry Scheduled" and pay.approved is False and pay.response_code == "20051"
    assert (pay.retry.max_attempts, pay.retry.attempts_made) == (3, 0)
    assert pay.retry.next_attempt_on.startswith("2026-01-04T00:00:00")   # 9 days / 3 attempts
    assert pay.retry.ends_on.startswith("2026-01-10T00:00:00")

    hooked.advance("P2D")
    assert api.payments.get_payment_details(pay.id).status == "Retry Scheduled"
    hooked.advance("P1D")
    details = api.payments.get_payment_details(pay.id)
    assert details.status == "Captured" and details.approved is True
    assert details.retry.attempts_made == 1 and not hasattr(details.retry, "next_attempt_on")
    actions = api.payments.get_payment_actions(pay.id).items
    assert [(a.type, a.response_code) for a in actions] == [
        ("Capture", "10000"), ("Authorization", "10000"), ("Authorization", "20051")]
    assert actions[1].processed_on.startswith("2026-01-04")
    assert event_types(hooked, pay.id) == ["payment_retry_scheduled", "payment_approved", "payment_captured"]
    scheduled = next(d for d in hooked.webhooks(provider="checkout") if d["event_type"] == "payment_retry_scheduled")
    data = json.loads(scheduled["payload"])["data"]
    assert data["id"] == pay.id and data["response_code"] == "20051"
    assert data["retry"]["next_attempt_on"].startswith("2026-01-04")


def test_every_renewal_is_declined_once_and_recovered_by_its_retry(hooked):
    api = sdk(hooked.url)
    for month in range(3):
        pay = renewal(api)
        assert pay.status == "Retry Scheduled" and pay.response_code == "20051", month
        hooked.advance("P30D")
        assert api.payments.get_payment_details(pay.id).status == "Captured", month


def test_retries_stop_after_max_attempts_with_a_final_decline(hooked):
    api = sdk(hooked.url)
    pay = renewal(api, INSUFFICIENT_FUNDS_CARD, retry=dunning(max_attempts=2, end_after_days=2))
    assert pay.status == "Retry Scheduled"
    hooked.advance("P1D")
    mid = api.payments.get_payment_details(pay.id)
    assert mid.status == "Retry Scheduled" and mid.retry.attempts_made == 1
    assert mid.retry.next_attempt_on.startswith("2026-01-03")
    hooked.advance("P30D")
    details = api.payments.get_payment_details(pay.id)
    assert details.status == "Declined" and details.retry.attempts_made == 2
    actions = api.payments.get_payment_actions(pay.id).items
    assert [a.response_code for a in actions] == ["20051"] * 3
    assert event_types(hooked, pay.id) == ["payment_retry_scheduled"] * 2 + ["payment_declined"]


def test_scenario_rules_see_each_retry_as_its_own_request(server):
    doc = """
name: first-retry-declined-too
rules:
  - name: first-attempt
    provider: checkout
    path: /checkout/payments
    times: 1
    effect: {decline: "20051"}
  - name: first-retry
    provider: checkout
    path: /checkout/payments/*/retries
    match: {attempt: 1}
    effect: {decline: "20005"}
"""
    assert server.admin("PUT", "/scenarios", data=doc).status_code == 200
    api = sdk(server.url)
    pay = renewal(api, capture=False)
    server.advance("P3D")
    assert api.payments.get_payment_details(pay.id).response_code == "20005"
    server.advance("P3D")
    details = api.payments.get_payment_details(pay.id)
    assert details.status == "Authorized" and details.retry.attempts_made == 2
    hits = {r["name"]: r["hits"] for r in server.admin("GET", "/scenarios").json()["scenarios"][0]["rules"]}
    assert hits == {"first-attempt": 1, "first-retry": 1}


def test_cancel_scheduled_retry_stops_the_attempts(server):
    api = sdk(server.url)
    pay = renewal(api, INSUFFICIENT_FUNDS_CARD)
    cancel = CancelScheduledRetryRequest()
    cancel.reference = "stop-INV-7"
    resp = api.payments.cancel_scheduled_retry(pay.id, cancel)
    assert resp.http_metadata.status_code == 202
    assert resp.reference == "stop-INV-7" and resp.action_id.startswith("act_")
    assert resp._links.payment.href.endswith(f"/payments/{pay.id}")
    server.advance("P30D")
    details = api.payments.get_payment_details(pay.id)
    assert details.status == "Canceled"
    assert len(api.payments.get_payment_actions(pay.id).items) == 1
    with pytest.raises(CheckoutApiException) as err:
        api.payments.cancel_scheduled_retry(pay.id, cancel)
    assert err.value.http_metadata.status_code == 403


def test_hard_declines_and_customer_initiated_payments_are_not_retried(server):
    api = sdk(server.url)
    assert renewal(api, LOST_CARD).status == "Declined"
    cit = api.payments.request_payment(payment_request(card_source(INSUFFICIENT_FUNDS_CARD), retry=dunning()))
    assert cit.status == "Declined"
    plain = renewal(api, INSUFFICIENT_FUNDS_CARD, retry=PaymentRetryRequest())
    assert plain.status == "Declined"


def test_downtime_retries_only_issuer_outages(server):
    retry, downtime = PaymentRetryRequest(), DowntimeRetryRequest()
    downtime.enabled = True
    retry.downtime = downtime
    api = sdk(server.url)
    assert renewal(api, INSUFFICIENT_FUNDS_CARD, retry=retry).status == "Declined"
    outage = renewal(api, "4095254802642505", retry=retry)   # 20068: response received too late
    assert outage.status == "Retry Scheduled" and outage.retry.max_attempts == 2
    assert outage.retry.next_attempt_on.startswith("2026-01-01T12:00:00")


@pytest.mark.parametrize("retry,code", [
    ({"dunning": {"enabled": True, "max_attempts": 16}}, "retry_max_attempts_invalid"),
    ({"dunning": {"enabled": True, "end_after_days": 0}}, "retry_end_after_days_invalid"),
    ({"dunning": {"enabled": "yes"}}, "retry_enabled_invalid"),
    ({"downtime": []}, "retry_downtime_invalid"),
    ("dunning", "retry_invalid"),
])
def test_bad_retry_objects_get_the_providers_422(server, retry, code):
    body = {"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
            "amount": 100, "currency": "GBP", "merchant_initiated": True, "payment_type": "Recurring", "retry": retry}
    r = requests.post(server.url + "/checkout/payments", json=body, headers={"Authorization": KEY}, timeout=10)
    assert r.status_code == 422 and r.json()["error_codes"] == [code]
