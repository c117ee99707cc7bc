"""Thread-safety: one idempotency key gives one payment; concurrent captures never overspend."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from checkout_sdk.exception import CheckoutApiException
from checkout_sdk.payments.payments import CaptureRequest, PaymentCustomerRequest, PaymentRequestTokenSource
from checkout_sdk.tokens.tokens import CardTokenRequest

from cko_helpers import KEY, card_source, payment_request, sdk

AUTH = {"Authorization": f"Bearer {KEY}"}


def test_twenty_threads_one_idempotency_key_one_payment(server):
    api = sdk(server.url)

    def attempt(i):
        req = payment_request(card_source(), reference=f"attempt-{i}")
        try:
            return api.payments.request_payment(req, idempotency_key="key-1").id
        except CheckoutApiException as exc:
            assert exc.http_metadata.status_code == 429   # the duplicate arrived while the first ran
            return None

    with ThreadPoolExecutor(20) as pool:
        ids = [x for x in pool.map(attempt, range(20)) if x]
    assert len(set(ids)) == 1
    listed = requests.get(f"{server.url}/checkout/payments", headers=AUTH, timeout=10).json()
    assert listed["total_count"] == 1


def test_idempotent_replay_returns_the_same_answer_whatever_the_body(server):
    api = sdk(server.url)
    first = api.payments.request_payment(payment_request(card_source(), reference="a"), idempotency_key="k")
    second = api.payments.request_payment(payment_request(card_source(), amount=1, reference="b"),
                                          idempotency_key="k")
    assert (second.id, second.action_id, second.amount, second.reference) == (first.id, first.action_id, 5000, "a")
    third = api.payments.request_payment(payment_request(card_source()), idempotency_key="other")
    assert third.id != first.id


def test_refused_request_is_not_stored_under_its_key(api):
    with pytest.raises(CheckoutApiException):
        api.payments.request_payment(payment_request(card_source("4242424242424241")), idempotency_key="fix-me")
    ok = api.payments.request_payment(payment_request(card_source()), idempotency_key="fix-me")
    assert ok.approved is True


def test_capture_idempotency(api):
    pay = api.payments.request_payment(payment_request(card_source(), capture=False))
    cap = CaptureRequest()
    cap.amount = 1000
    cap.capture_type = "NonFinal"
    a = api.payments.capture_payment(pay.id, cap, idempotency_key="cap-1")
    b = api.payments.capture_payment(pay.id, cap, idempotency_key="cap-1")
    assert a.action_id == b.action_id
    assert api.payments.get_payment_details(pay.id).balances.total_captured == 1000


def test_twenty_concurrent_partial_captures_never_exceed_the_authorization(server):
    api = sdk(server.url)
    pay = api.payments.request_payment(payment_request(card_source(), amount=10000, capture=False))

    def capture(_):
        cap = CaptureRequest()
        cap.amount = 1500
        cap.capture_type = "NonFinal"
        try:
            api.payments.capture_payment(pay.id, cap)
            return 1500
        except CheckoutApiException as exc:
            assert exc.http_metadata.status_code in (403, 422)
            return 0

    with ThreadPoolExecutor(20) as pool:
        captured = sum(pool.map(capture, range(20)))
    details = api.payments.get_payment_details(pay.id)
    assert captured == details.balances.total_captured == 9000   # six of 1500 fit in 10000
    assert details.balances.available_to_capture == 1000
    assert len([a for a in api.payments.get_payment_actions(pay.id).items if a.type == "Capture"]) == 6


def test_one_card_token_pays_once_however_many_requests_race_for_it(server):
    api = sdk(server.url)
    req = CardTokenRequest()
    req.number, req.expiry_month, req.expiry_year, req.cvv = "4242424242424242", 12, 2030, "100"
    tok = api.tokens.request_card_token(req).token

    def attempt(i):
        source = PaymentRequestTokenSource()
        source.token = tok
        extra = {}
        if i % 2:   # a refused request must neither spend the token nor let two others share it
            extra["customer"] = PaymentCustomerRequest()
            extra["customer"].id = "cus_" + "a" * 26
        try:
            return api.payments.request_payment(payment_request(source, reference=f"race-{i}", **extra)).id
        except CheckoutApiException as exc:
            assert exc.error_details in (["token_used"], ["customer_not_found"])
            return None

    with ThreadPoolExecutor(20) as pool:
        paid = [x for x in pool.map(attempt, range(20)) if x]
    assert len(paid) == 1
    listed = requests.get(f"{server.url}/checkout/payments", headers=AUTH, timeout=10).json()
    assert listed["total_count"] == 1


@pytest.mark.parametrize("hours", [-5, 1e300, "nan"])
def test_an_idempotency_ttl_no_clock_can_keep_is_refused_at_configuration(server, hours):
    # -5 let one key make two payments; 1e300 made every keyed request a 500
    body = '{"providers": {"checkout": {"idempotency_ttl_hours": %s}}}' % ("NaN" if hours == "nan" else hours)
    resp = server.admin("PUT", "/config", data=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "idempotency_ttl_hours" in resp.text, resp.text
    api = sdk(server.url)
    first = api.payments.request_payment(payment_request(card_source()), idempotency_key="ttl-key")
    assert api.payments.request_payment(payment_request(card_source()), idempotency_key="ttl-key").id == first.id


def test_keys_past_a_compressed_batch_replay_their_own_payment(server):
    # finished keys' answers are compressed 64 at a time by a thread of their own: each of 150
    # keys, whether its answer waits or lies in a batch, replays its own payment byte for byte
    api = sdk(server.url)
    made = {f"key-{n}": api.payments.request_payment(payment_request(card_source(), amount=100 + n,
                                                                     reference=f"order-{n}"),
                                                     idempotency_key=f"key-{n}")
            for n in range(150)}
    for key, first in made.items():
        again = api.payments.request_payment(payment_request(card_source(), amount=1), idempotency_key=key)
        assert (again.id, again.amount, again.reference, again.action_id) == \
            (first.id, first.amount, first.reference, first.action_id)
    listed = requests.get(f"{server.url}/checkout/payments", headers=AUTH, timeout=10).json()
    assert listed["total_count"] == 150
