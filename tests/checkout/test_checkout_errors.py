"""Errors in Checkout.com's envelope: 401, 404, 413, 422 with error_codes; never a 500."""
import itertools
import json

import pytest
import requests
from checkout_sdk.exception import CheckoutApiException, CheckoutAuthorizationException
from checkout_sdk.payments.payments import CaptureRequest, PaymentCustomerRequest

from cko_helpers import KEY, card_source, payment_request, sdk

AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
CARD = {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030, "cvv": "100"}


def post(server, path, body, headers=AUTH):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(f"{server.url}/checkout{path}", data=data, headers=headers, timeout=10)


def test_unknown_payment_is_404_with_request_id(api):
    with pytest.raises(CheckoutApiException) as err:
        api.payments.get_payment_details("pay_" + "a" * 26)
    assert err.value.http_metadata.status_code == 404
    assert err.value.request_id   # from the Cko-Request-Id header: the body is empty


@pytest.mark.parametrize("path", ["/payments/pay_nope/actions", "/instruments/src_nope", "/customers/cus_nope",
                                  "/no/such/path"])
def test_unknown_ids_and_paths_are_404(server, path):
    resp = requests.get(f"{server.url}/checkout{path}", headers=AUTH, timeout=10)
    assert resp.status_code == 404 and resp.content == b""
    assert resp.headers["Cko-Request-Id"]


@pytest.mark.parametrize("header", [None, "Bearer sk_sbox_short", "Bearer pk_sbox_" + "a" * 27, "Basic abc", "Bearer "])
def test_missing_or_bad_key_is_401_with_empty_body(server, header):
    headers = {"Authorization": header} if header else {}
    resp = requests.get(f"{server.url}/checkout/payments/pay_x", headers=headers, timeout=10)
    assert resp.status_code == 401 and resp.content == b""
    assert resp.headers["Cko-Request-Id"]


def test_sdk_sees_401_for_an_unregistered_key():
    from simulator.testing import SandboxServer
    with SandboxServer({"providers": {"checkout": {"secret_keys": [KEY]}}}) as srv:
        assert sdk(srv.url).payments.request_payment(payment_request(card_source())).status
        other = sdk(srv.url, "sk_sbox_" + "c" * 27)
        with pytest.raises((CheckoutApiException, CheckoutAuthorizationException)) as err:
            other.payments.request_payment(payment_request(card_source()))
        assert err.value.http_metadata.status_code == 401


def test_malformed_json_is_422_request_malformed(server):
    resp = post(server, "/payments", b'{"amount": 10,')
    assert resp.status_code == 422
    body = resp.json()
    assert body["error_type"] == "request_malformed" and body["error_codes"] == ["request_json_invalid"]
    assert body["request_id"]


def test_oversized_body_is_413(server):
    resp = post(server, "/payments", b'{"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    assert resp.status_code == 413
    assert resp.json()["error_codes"] == ["request_too_large"]


@pytest.mark.parametrize("body,codes", [
    ({}, ["payment_source_required", "currency_required"]),
    ({"source": {"type": "card"}, "currency": "USD"},
     ["card_number_required", "card_expiry_month_required", "card_expiry_year_required"]),
    ({"source": {"type": "card", "number": "4242424242424241", "expiry_month": 12, "expiry_year": 2030},
      "currency": "USD"}, ["card_number_invalid"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 13, "expiry_year": 2030},
      "currency": "USD"}, ["card_expiry_month_invalid"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
      "currency": "USD", "amount": -1}, ["amount_invalid"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
      "currency": "USD", "amount": "10"}, ["amount_invalid"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
      "currency": "DOLLARS"}, ["currency_invalid"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
      "currency": "USD", "payment_type": "Weekly"}, ["payment_type_invalid"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 1, "expiry_year": 2020},
      "currency": "USD"}, ["card_expired"]),
    ({"source": {"type": "id", "id": "src_" + "a" * 26}, "currency": "USD"}, ["source_id_unknown"]),
    ({"source": {"type": "id"}, "currency": "USD"}, ["source_id_required"]),
    ({"source": {"type": "token", "token": "tok_" + "a" * 26}, "currency": "USD"}, ["token_invalid"]),
    ({"source": {"type": "wallet"}, "currency": "USD"}, ["source_type_invalid"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
      "currency": "USD", "reference": "r" * 51}, ["reference_invalid"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
      "currency": "USD", "3ds": {"enabled": "yes"}}, ["3ds_enabled_invalid"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
      "currency": "USD", "success_url": "not a url"}, ["success_url_invalid"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
      "currency": "USD", "metadata": {"nested": {"x": 1}}}, ["metadata_value_invalid"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
      "currency": "USD", "customer": {"id": "cus_" + "a" * 26}}, ["customer_not_found"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
      "currency": "USD", "3ds": "yes", "customer": [1]}, ["3ds_invalid", "customer_invalid"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
      "currency": "USD", "billing_descriptor": {"name": "n" * 26, "city": "London #1"}},
     ["billing_descriptor_name_invalid", "billing_descriptor_city_invalid"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
      "currency": "USD", "billing_descriptor": {}}, ["billing_descriptor_name_required", "billing_descriptor_city_required"]),
    ({"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
      "currency": "USD", "billing_descriptor": "Gym"}, ["billing_descriptor_name_invalid"]),
    ([1, 2], ["request_invalid"]),
])
def test_validation_errors_are_422_with_error_codes(server, body, codes):
    resp = post(server, "/payments", body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error_type"] == "request_invalid"
    assert resp.json()["error_codes"] == codes
    # nothing half-written: no payment exists after a refused request
    listed = requests.get(f"{server.url}/checkout/payments", headers=AUTH, timeout=10).json()
    assert listed["total_count"] == 0


def test_sdk_parses_422_error_codes(api):
    req = payment_request(card_source(number="4242424242424241"))
    with pytest.raises(CheckoutApiException) as err:
        api.payments.request_payment(req)
    assert err.value.http_metadata.status_code == 422
    assert err.value.error_type == "request_invalid"
    assert err.value.error_details == ["card_number_invalid"]


def test_over_capture_and_over_refund(api):
    from checkout_sdk.payments.payments import CaptureRequest, RefundRequest
    pay = api.payments.request_payment(payment_request(card_source(), amount=1000, capture=False))
    cap = CaptureRequest()
    cap.amount = 1001
    with pytest.raises(CheckoutApiException) as err:
        api.payments.capture_payment(pay.id, cap)
    assert err.value.error_details == ["capture_value_greater_than_remaining_authorized"]
    with pytest.raises(CheckoutApiException) as err:
        api.payments.refund_payment(pay.id)      # nothing captured yet
    assert err.value.http_metadata.status_code == 403
    api.payments.capture_payment(pay.id)
    ref = RefundRequest()
    ref.amount = 1001
    with pytest.raises(CheckoutApiException) as err:
        api.payments.refund_payment(pay.id, ref)
    assert err.value.http_metadata.status_code == 422
    assert err.value.error_details == ["amount_exceeds_balance"]
    assert api.payments.get_payment_details(pay.id).balances.total_refunded == 0


def test_declined_payment_cannot_be_captured(api):
    pay = api.payments.request_payment(payment_request(card_source("4544249167673670")))
    with pytest.raises(CheckoutApiException) as err:
        api.payments.capture_payment(pay.id)
    assert err.value.http_metadata.status_code == 403


_VALUES = [None, True, 0, -5, 10 ** 30, 1.5, "", "x" * 300, [], {}, [{}], {"type": "card"}, "4242424242424242"]
_FIELDS = ["source", "amount", "currency", "payment_type", "merchant_initiated", "previous_payment_id",
           "reference", "capture", "3ds", "customer", "metadata", "success_url", "capture_on"]


def test_no_request_shape_produces_a_500(server):
    base = {"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
            "currency": "USD", "amount": 100}
    statuses = set()
    for field, value in itertools.product(_FIELDS, _VALUES):
        body = dict(base)
        body[field] = value
        resp = post(server, "/payments", body)
        statuses.add(resp.status_code)
        assert resp.status_code < 500, (field, value, resp.text)
    for path in ["/payments/pay_x/captures", "/payments/pay_x/refunds", "/payments/pay_x/voids", "/customers",
                 "/instruments", "/tokens"]:
        for raw in [b"", b"null", b"[]", b'"s"', b"{", b'{"amount": "x"}', b"\xff\xfe"]:
            resp = post(server, path, raw)
            assert resp.status_code < 500, (path, raw, resp.text)
    for method in ["PUT", "DELETE", "PATCH"]:
        resp = requests.request(method, f"{server.url}/checkout/payments", headers=AUTH, timeout=10)
        assert resp.status_code == 405
    assert 422 in statuses and 201 in statuses


@pytest.mark.parametrize("kind", [[], {}, [1], {"type": "card"}, 5, True, ""])
def test_a_source_type_that_is_no_known_type_is_source_type_invalid_whatever_its_json_type(server, kind):
    resp = post(server, "/payments", {"source": {**CARD, "type": kind}, "amount": 100, "currency": "USD"})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error_codes"] == ["source_type_invalid"]   # what "type": "wallet" answers
    listed = requests.get(f"{server.url}/checkout/payments", headers=AUTH, timeout=10).json()
    assert listed["total_count"] == 0


def _paths(body, prefix=()):
    """Every member of a body, nested ones included, as a path of keys."""
    for key, value in body.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _paths(value, prefix + (key,))


def _with(body, path, value):
    body = json.loads(json.dumps(body))
    inner = body
    for key in path[:-1]:
        inner = inner[key]
    inner[path[-1]] = value
    return body


def test_no_member_of_any_body_given_a_list_or_an_object_produces_a_500(server):
    # a client value used as a dict key or set member raises TypeError for [] and {}: every body,
    # every member at any depth, so a discriminator deep in a body cannot be missed
    pk = {"Authorization": "Bearer pk_sbox_" + "a" * 27, "Content-Type": "application/json"}
    customer = post(server, "/customers", {"email": "fuzz@example.com"}).json()["id"]
    pay = post(server, "/payments", {"source": CARD, "amount": 1000, "currency": "USD", "capture": False}).json()
    src, href = pay["source"]["id"], f"/payments/{pay['id']}"
    three_ds = {"enabled": False, "attempt_n3d": False, "challenge_indicator": "no_preference",
                "allow_upgrade": True, "exemption": "low_value", "version": "2.2.0", "eci": "05",
                "cryptogram": "c", "xid": "x", "authentication_id": "a", "status": "Y"}
    payment = {"amount": 100, "currency": "USD", "payment_type": "Recurring", "merchant_initiated": False,
               "previous_payment_id": "481108533665280", "reference": "r", "description": "d", "capture": False,
               "capture_on": "2030-01-01T00:00:00Z", "3ds": three_ds, "metadata": {"a": 1},
               "customer": {"email": "a@example.com", "name": "n", "phone": {"country_code": "44", "number": "1234567"}},
               "success_url": "http://x/ok", "failure_url": "http://x/no", "processing_channel_id": "pc_" + "a" * 26,
               "authorization_type": "Final", "processing": {"a": 1},
               "retry": {"enabled": True, "dunning": {"enabled": True}, "downtime": {"enabled": True}}}
    card = {**CARD, "name": "n", "stored": False, "store_for_future_use": True, "phone": {"country_code": "44", "number": "1234567"},
            "billing_address": {"address_line1": "x", "city": "y", "zip": "z", "country": "GB"}}
    bodies = [
        ("POST", "/payments", {**payment, "source": card}),
        ("POST", "/payments", {**payment, "source": {"type": "id", "id": src, "cvv": "100", "stored": True}}),
        ("POST", "/payments", {**payment, "source": {"type": "token", "token": "tok_" + "a" * 26}}),
        ("POST", "/payments", {**payment, "source": {"type": "customer", "id": customer}}),
        ("POST", f"{href}/captures", {"amount": 1, "capture_type": "NonFinal", "reference": "r", "metadata": {"a": 1}}),
        ("POST", f"{href}/refunds", {"amount": 1, "reference": "r", "metadata": {"a": 1}, "capture_action_id": "act_x"}),
        ("POST", f"{href}/voids", {"reference": "r", "metadata": {"a": 1}}),
        ("POST", f"{href}/cancellations", {"reference": "r"}),
        ("POST", "/tokens", {**CARD, "name": "n", "billing_address": {"country": "GB"}, "phone": {"number": "1234567"}}),
        ("POST", "/customers", {"email": "b@example.com", "name": "n", "phone": {"country_code": "1", "number": "1234567"},
                                "metadata": {"a": 1}, "default": src}),
        ("PATCH", f"/customers/{customer}", {"email": "c@example.com", "name": "n", "metadata": {"a": 1}, "default": src}),
        ("POST", "/instruments", {"type": "card", "number": CARD["number"], "expiry_month": 12, "expiry_year": 2030,
                                  "name": "n", "account_holder": {"a": 1}, "customer": {"id": customer, "default": True}}),
        ("POST", "/instruments", {"type": "token", "token": "tok_" + "a" * 26,
                                  "customer": {"email": "d@example.com", "name": "n", "default": True}}),
        ("PATCH", f"/instruments/{src}", {"expiry_month": 12, "expiry_year": 2031, "name": "n", "account_holder": {"a": 1},
                                          "customer": {"id": customer, "email": "fuzz@example.com", "default": True}}),
    ]
    for method, path, body in bodies:
        headers = pk if path == "/tokens" else AUTH
        for member in _paths(body):
            for value in ([], {}):
                resp = requests.request(method, f"{server.url}/checkout{path}", data=json.dumps(_with(body, member, value)),
                                        headers=headers, timeout=10)
                assert resp.status_code < 500, (method, path, member, value, resp.text)


def test_an_error_body_and_its_answer_carry_one_request_id(server, api):
    refusals = []
    with pytest.raises(CheckoutApiException) as err:   # validation
        api.payments.request_payment(payment_request(card_source("4242424242424241")))
    refusals.append(err.value)
    customer = PaymentCustomerRequest()
    customer.id = "cus_" + "a" * 26
    with pytest.raises(CheckoutApiException) as err:   # a business rule
        api.payments.request_payment(payment_request(card_source(), customer=customer))
    refusals.append(err.value)
    held = api.payments.request_payment(payment_request(card_source(), amount=1000, capture=False))
    capture = CaptureRequest()
    capture.amount = 1001
    with pytest.raises(CheckoutApiException) as err:   # a follow-up action
        api.payments.capture_payment(held.id, capture)
    refusals.append(err.value)
    for exc in refusals:
        assert exc.http_metadata.status_code == 422
        assert exc.request_id == exc.http_metadata.headers["Cko-Request-Id"]   # the body's, as the SDK reads it
    malformed = post(server, "/payments", b'{"amount": 10,')
    assert malformed.json()["request_id"] == malformed.headers["Cko-Request-Id"]
    # one id per answer, never one answer's id on another
    ids = [exc.request_id for exc in refusals] + [held.http_metadata.headers["Cko-Request-Id"],
                                                   malformed.headers["Cko-Request-Id"]]
    assert len(set(ids)) == len(ids)


def test_request_ids_come_from_the_seed():
    from simulator.testing import DEFAULT_START, SandboxServer

    def run():
        with SandboxServer({"seed": 3, "clock": {"start": DEFAULT_START}}) as srv:
            api = sdk(srv.url)
            pay = api.payments.request_payment(payment_request(card_source()))
            with pytest.raises(CheckoutApiException) as err:
                api.payments.request_payment(payment_request(card_source("4242424242424241")))
            after = api.payments.request_payment(payment_request(card_source()))
            return [pay.http_metadata.headers["Cko-Request-Id"], pay.id, err.value.request_id,
                    err.value.http_metadata.headers["Cko-Request-Id"], after.id, after.http_metadata.headers["Cko-Request-Id"]]

    assert run() == run()


SEPARATED = ["4242 4242 4242 4242", "4242-4242-4242-4242", "4242\u00a04242\u00a04242\u00a04242", "4242424242424242 "]


def _stored(server) -> set:
    store = server.sandbox.store
    with store.lock:
        return {(p, k, i) for p, t, k, _ in store.groups() for i, _ in store.items(p, k, t)}


@pytest.mark.parametrize("number", SEPARATED)
def test_a_card_number_with_separators_is_card_number_invalid_everywhere(server, api, number):
    # "no separators" (fact sheet, card source): stripping them would pass what the provider refuses
    from checkout_sdk.instruments.instruments import CreateCardInstrumentRequest
    from checkout_sdk.tokens.tokens import CardTokenRequest
    token = CardTokenRequest()
    token.number, token.expiry_month, token.expiry_year = number, 12, 2030
    instrument = CreateCardInstrumentRequest()
    instrument.number, instrument.expiry_month, instrument.expiry_year = number, 12, 2030
    before = _stored(server)
    for send in (lambda: api.payments.request_payment(payment_request(card_source(number=number))),
                 lambda: api.tokens.request_card_token(token),
                 lambda: api.instruments.create(instrument)):
        with pytest.raises(CheckoutApiException) as err:
            send()
        assert err.value.http_metadata.status_code == 422
        assert (err.value.error_type, err.value.error_details) == ("request_invalid", ["card_number_invalid"])
    assert _stored(server) == before   # nothing half-written
    # the same digits without separators, and as a JSON integer (the guide's examples), pay
    assert api.payments.request_payment(payment_request(card_source(number="4242424242424242"))).approved
    body = {"source": {**CARD, "number": 4242424242424242}, "amount": 100, "currency": "USD"}
    assert post(server, "/payments", body).status_code == 201
