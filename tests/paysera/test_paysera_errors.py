"""Paysera's error envelope for every kind of bad input, amounts at the edge, and never a 500."""
from __future__ import annotations

import json

import pytest
import requests

from paysera_helpers import client, first_payment, hosted_token, recurring_payment  # noqa: F401

CB = "http://127.0.0.1:9/cb"


def assert_envelope(resp, status, error):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == error and isinstance(body["error_description"], str)
    return body


@pytest.mark.parametrize("raw", [b"{not json", b"[]", b"null", b"\xff\xfe\x00", b'"text"', pytest.param(b"[" * 50000, id="deep"),
                                 b'{"price": ', b"42"])
def test_malformed_bodies_are_invalid_request(server, client, raw):
    resp = client.request("POST", "/checkout/rest/v1/payment-requests", raw=raw)
    assert_envelope(resp, 400, "invalid_request")


@pytest.mark.parametrize("field,value", [
    ("price", "10.00"), ("price", {"amount": {}, "currency": "EUR"}), ("price", {"amount": "10.00"}),
    ("price", {"amount": "10", "currency": "eur"}), ("payer", []), ("payer", {"email": "no-at-sign"}),
    ("parameters", "x"), ("description", 5), ("description", "x" * 256), ("callback_url", "not a url"),
    ("token_strategy", "sometimes"), ("locale", 5), ("business_id", None), ("order_id", ""),
    ("valid_until", "soon"), ("valid_until", True), ("parameters", {"refund_on_capture": "yes"}),
    ("method_key", ["card"]),
])
def test_invalid_fields_are_invalid_parameters(server, client, field, value):
    body = first_payment(CB)
    body[field] = value
    err = assert_envelope(client.create(**body), 400, "invalid_parameters")
    assert any(k == field or k.startswith(field + ".") for k in err["error_properties"]), err
    assert err["error_description"] == next(iter(err["error_properties"].values()))[0]
    assert client.request("GET", "/checkout/rest/v1/payment-requests").json()["items"] == []


def test_missing_required_fields_are_all_reported(server, client):
    err = assert_envelope(client.create(), 400, "invalid_parameters")
    assert set(err["error_properties"]) == {"business_id", "order_id", "price", "description", "method_key",
                                            "payer", "locale", "callback_url"}
    err = assert_envelope(client.create(**{**first_payment(CB), "payer": {}}), 400, "invalid_parameters")
    assert "payer.email" in err["error_properties"]


def test_token_strategy_needs_a_card_method(server, client):
    err = assert_envelope(client.create(**first_payment(CB, method_key="banklink")), 400, "invalid_parameters")
    assert "method_key" in err["error_properties"]


@pytest.mark.parametrize("amount,currency,echo", [
    ("10.00", "EUR", "10.00"), ("10", "EUR", "10.00"), ("10,5", "EUR", "10.50"), (999, "EUR", 999),
    ("1000", "JPY", "1000"), (1000, "JPY", 1000), ("1.234", "KWD", "1.234"),
])
def test_amounts_accepted_and_echoed_in_the_form_sent(server, client, amount, currency, echo):
    resp = client.create(**first_payment(CB, price={"amount": amount, "currency": currency}))
    assert resp.status_code == 200, resp.text
    assert resp.json()["price"] == {"amount": echo, "currency": currency}


@pytest.mark.parametrize("amount,currency", [
    ("10.001", "EUR"), ("10.5", "JPY"), (9.99, "EUR"), (1e3, "EUR"), (0, "EUR"), ("0.00", "EUR"), (-5, "EUR"),
    ("-5.00", "EUR"), ("abc", "EUR"), (True, "EUR"), ("1e3", "EUR"), ("", "EUR"), (None, "EUR"), ([1], "EUR"),
])
def test_bad_amounts_are_rejected_on_price_amount(server, client, amount, currency):
    err = assert_envelope(client.create(**first_payment(CB, price={"amount": amount, "currency": currency})),
                          400, "invalid_parameters")
    assert "price.amount" in err["error_properties"]


def test_integer_amount_is_minor_units_inside(server, client, receiver):
    _, token = hosted_token(server, client, receiver)
    pr = client.create(**recurring_payment(receiver.url + "/cb", amount=999)).json()
    client.authorize(pr["id"], token)
    stored = server.sandbox.store.get("paysera", "payment_request", pr["id"])
    assert stored["_amount"] == 999 and stored["_paid"] == 999
    pr = client.create(**recurring_payment(receiver.url + "/cb", amount="9.99")).json()
    assert server.sandbox.store.get("paysera", "payment_request", pr["id"])["_amount"] == 999


@pytest.mark.parametrize("payload", [{}, {"token": 5}, {"token": ""}, {"token": None}])
def test_authorize_body_validation(server, client, receiver, payload):
    pr = client.create(**recurring_payment(receiver.url + "/cb")).json()
    err = assert_envelope(client.authorize(pr["id"], None) if False else
                          client.request("PUT", f"/checkout/rest/v1/payment-requests/{pr['id']}/authorize", payload),
                          400, "invalid_parameters")
    assert "token" in err["error_properties"]


def test_authorize_and_capture_malformed_bodies(server, client, receiver):
    pr = client.create(**recurring_payment(receiver.url + "/cb")).json()
    base = f"/checkout/rest/v1/payment-requests/{pr['id']}"
    assert_envelope(client.request("PUT", base + "/authorize", raw=b"{"), 400, "invalid_request")
    assert_envelope(client.request("PUT", base + "/authorize", raw=b""), 400, "invalid_request")
    assert_envelope(client.request("PUT", base + "/capture", raw=b"[1]"), 400, "invalid_request")
    assert_envelope(client.request("PUT", base + "/capture", {"capture_amount": "5"}), 400, "invalid_parameters")


def test_not_found_and_wrong_method(server, client):
    assert_envelope(client.get("PRAdoesnotexist"), 404, "not_found")
    assert_envelope(client.authorize("PRAdoesnotexist", "tok"), 404, "not_found")
    assert_envelope(client.request("GET", "/checkout/rest/v1/nothing-here"), 404, "not_found")
    assert_envelope(client.request("DELETE", "/checkout/rest/v1/payment-requests"), 405, "not_found")


def test_too_large_body(server, client):
    resp = client.request("POST", "/checkout/rest/v1/payment-requests", raw=b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert resp.status_code == 413 and resp.json()["error"] == "invalid_request"


def test_no_500_for_random_garbage(server, client, receiver):
    import random
    rng = random.Random(5)
    pieces = [b"{", b"}", b"[", b"]", b'"price"', b":", b",", b'"amount"', b"1e999", b"null", b"\\u0000",
              b'"\xc3\x28"', b"-0", b"NaN", b"Infinity", b'"token"']
    pr = client.create(**recurring_payment(receiver.url + "/cb")).json()
    paths = ["/checkout/rest/v1/payment-requests", f"/checkout/rest/v1/payment-requests/{pr['id']}/authorize",
             f"/checkout/rest/v1/payment-requests/{pr['id']}/capture"]
    for i in range(120):
        raw = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        path = paths[i % 3]
        resp = client.request("POST" if i % 3 == 0 else "PUT", path, raw=raw)
        assert resp.status_code < 500, (raw, resp.text)
        assert "error" in resp.json() or resp.status_code == 200


def test_unauthenticated_hosted_page_for_unknown_request(server):
    resp = requests.get(server.url + "/paysera/checkout/pay/PRAnothing")
    assert resp.status_code == 404 and "not found" in resp.text


def test_error_bodies_are_json(server, client):
    resp = client.get("PRAnothing")
    assert resp.headers["Content-Type"].startswith("application/json")
    assert json.loads(resp.text) == {"error": "not_found", "error_description": "Resource was not found"}


@pytest.mark.parametrize("action", [
    {"card": {"number": 4111111111111111, "holder_name": 5}}, {"card": {"number": None}},
    {"card": {"exp_month": "ab"}}, {"card": {"exp_year": None}}, {"card": {"cvv": [1]}},
    {"card": {"exp_month": 13}}, {"recurring_consent": "yes"}, {"outcome": "decline", "card": {"number": "x"}},
])
def test_ci_hosted_action_never_500(server, client, action):
    pr = client.create(**first_payment(CB)).json()
    resp = server.hosted("paysera", pr["id"], **{"outcome": "approve", **action})
    assert resp.status_code in (200, 400), resp.text
    assert "error" in resp.json() or resp.json()["result"] in ("paid", "declined")


def test_hosted_form_garbage_never_500(server, client):
    pr = client.create(**first_payment(CB)).json()
    for data in ({}, {"action": "pay"}, {"action": "pay", "exp_month": "0", "card_number": "x" * 5000},
                 {"action": "what"}, {"card_number": "4111111111111111", "exp_year": "99999"}):
        resp = requests.post(pr["authorization_url"], data=data, allow_redirects=False)
        assert resp.status_code == 200, resp.text
    resp = requests.post(pr["authorization_url"], data=b"\xff\xfe", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 200
    assert client.get(pr["id"]).json()["status"] == "new"


# Python's \d, int() and isdigit() take any Unicode digit, "$" matches before a trailing newline
# and strip() drops Unicode spaces; Paysera's normalizer takes ASCII digits only (fact sheet 4.3).
NOT_ASCII_AMOUNTS = ["１０.００", "١٠.٥٠", "10.00\n", "1０.00", "10.0٠", "10,００", "²", "\u00a010.00", " 10.00",
                     "10.00 ", "\n10.00"]


@pytest.mark.parametrize("amount", NOT_ASCII_AMOUNTS)
def test_amounts_take_ascii_digits_only(server, client, amount):
    text = assert_envelope(client.create(**first_payment(CB, price={"amount": "abc", "currency": "EUR"})),
                           400, "invalid_parameters")
    err = assert_envelope(client.create(**first_payment(CB, price={"amount": amount, "currency": "EUR"})),
                          400, "invalid_parameters")
    assert err == text                  # the same answer as any other non-numeric amount
    assert client.request("GET", "/checkout/rest/v1/payment-requests").json()["items"] == []


def test_capture_amount_takes_ascii_digits_only(server, client, receiver):
    server.admin("PUT", "/config", json={"providers": {"paysera": {"two_step": True}}}).raise_for_status()
    _, token = hosted_token(server, client, receiver)
    pr = client.create(**recurring_payment(receiver.url + "/cb", amount="25.00")).json()
    assert client.authorize(pr["id"], token).json()["status"] == "authorized"
    for amount in ("２０.００", "20.00\n"):
        err = assert_envelope(client.capture(pr["id"], {"capture_amount": {"amount": amount, "currency": "EUR"}}),
                              400, "invalid_parameters")
        assert list(err["error_properties"]) == ["capture_amount.amount"]
    assert client.get(pr["id"]).json()["status"] == "authorized"


@pytest.mark.parametrize("field,value,path", [
    ("price", {"amount": "10.00", "currency": "EUR\n"}, "price.currency"),
    ("locale", "en\n", "locale"),
    ("method_country", "LT\n", "method_country"),
])
def test_codes_are_matched_whole(server, client, field, value, path):
    err = assert_envelope(client.create(**{**first_payment(CB), field: value}), 400, "invalid_parameters")
    assert list(err["error_properties"]) == [path]
    assert client.request("GET", "/checkout/rest/v1/payment-requests").json()["items"] == []


@pytest.mark.parametrize("card,field", [
    ({"exp_month": "１２"}, "exp_month"), ({"exp_month": "+12"}, "exp_month"), ({"exp_month": "1_2"}, "exp_month"),
    ({"exp_year": "２０３０"}, "exp_year"), ({"exp_year": "٣٠"}, "exp_year"), ({"exp_year": "1" * 5000}, "exp_year"),
    ({"cvv": "１２３"}, "cvv"), ({"cvv": "¹²³"}, "cvv"), ({"cvv": "123\n"}, "cvv"),
])
def test_hosted_card_fields_take_ascii_digits_only(server, client, card, field):
    pr = client.create(**first_payment(CB)).json()
    err = assert_envelope(server.hosted("paysera", pr["id"], outcome="approve", card=card), 400, "invalid_parameters")
    assert list(err["error_properties"]) == [f"card.{field}"]
    page = requests.post(pr["authorization_url"], allow_redirects=False, data={
        "action": "pay", "card_number": "4111111111111111", "exp_month": "12", "exp_year": "2030", "cvv": "123",
        "holder_name": "John Doe", **card})
    assert page.status_code == 200 and "is invalid" in page.text
    assert client.get(pr["id"]).json()["status"] == "new"


def test_hosted_card_fields_keep_leading_zeros_and_spaces_around_digits(server, client):
    pr = client.create(**first_payment(CB)).json()
    done = server.hosted("paysera", pr["id"], outcome="approve",
                         card={"exp_month": " 09 ", "exp_year": "30", "cvv": "012"})
    assert done.status_code == 200 and done.json()["result"] == "paid", done.text


@pytest.mark.parametrize("name", ["limit", "offset"])
def test_list_arguments_with_thousands_of_digits_are_invalid_parameters(server, client, name):
    # int() refuses a run of more than 4300 digits with a ValueError, once a 500
    err = assert_envelope(client.request("GET", "/checkout/rest/v1/payment-requests", params={name: "1" * 5000}),
                          400, "invalid_parameters")
    assert list(err["error_properties"]) == [name]
    padded = client.request("GET", "/checkout/rest/v1/payment-requests", params={name: "0" * 20 + "5"})
    assert padded.status_code == 200 and padded.json()["_metadata"][name] == 5
