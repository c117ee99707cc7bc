"""Errors: Gr4vy's error object and status codes; no 500 for any bad input; the SDK parses every
error the sandbox returns into its own exception types."""
import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
import requests
from gr4vy import auth, errors
from gr4vy_helpers import CARD, client

DATA_MODELS = {400: errors.Error400Data, 401: errors.Error401Data, 403: errors.Error403Data,
               404: errors.Error404Data, 405: errors.Error405Data, 409: errors.Error409Data}


@pytest.fixture
def http(server, pem):
    def call(method, path, **kw):
        headers = {"authorization": "Bearer " + auth.get_token(pem), **kw.pop("headers", {})}
        return requests.request(method, f"{server.url}/gr4vy{path}", headers=headers, timeout=10, **kw)
    return call


def assert_gr4vy_error(resp, status):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["type"] == "error" and body["status"] == status and body["code"] and body["message"]
    assert isinstance(body["details"], list)
    for d in body["details"]:
        assert set(d) == {"location", "pointer", "message", "type"}
    if status in DATA_MODELS:
        DATA_MODELS[status].model_validate(body)   # what the SDK does before raising ErrorNNN
    return body


BAD_TRANSACTIONS = [
    {},
    {"amount": 100},
    {"currency": "USD", "payment_method": CARD},
    {"amount": "100", "currency": "USD", "payment_method": CARD},
    {"amount": 1.5, "currency": "USD", "payment_method": CARD},
    {"amount": True, "currency": "USD", "payment_method": CARD},
    {"amount": -1, "currency": "USD", "payment_method": CARD},
    {"amount": 10**12, "currency": "USD", "payment_method": CARD},
    {"amount": 100, "currency": 840, "payment_method": CARD},
    {"amount": 100, "currency": "usd", "payment_method": CARD},
    {"amount": 100, "currency": "USD"},
    {"amount": 100, "currency": "USD", "payment_method": "card"},
    {"amount": 100, "currency": "USD", "payment_method": None},
    {"amount": 100, "currency": "USD", "payment_method": {"method": "paypal"}},
    {"amount": 100, "currency": "USD", "payment_method": {"method": "card"}},
    {"amount": 100, "currency": "USD", "payment_method": {**CARD, "number": 4111111111111111}},
    {"amount": 100, "currency": "USD", "payment_method": {**CARD, "expiration_date": "2030-12"}},
    {"amount": 100, "currency": "USD", "payment_method": {**CARD, "security_code": "12"}},
    {"amount": 100, "currency": "USD", "payment_method": {"method": "id"}},
    {"amount": 100, "currency": "USD", "payment_method": {"method": "id", "id": "does-not-exist"}},
    {"amount": 100, "currency": "USD", "payment_method": CARD, "intent": "sale"},
    {"amount": 0, "currency": "USD", "payment_method": CARD, "intent": "capture"},
    {"amount": 100, "currency": "USD", "payment_method": CARD, "payment_source": "web"},
    {"amount": 100, "currency": "USD", "payment_method": CARD, "store": "yes"},
    {"amount": 100, "currency": "USD", "payment_method": CARD, "merchant_initiated": 1},
    {"amount": 100, "currency": "USD", "payment_method": CARD, "metadata": {"a": 1}},
    {"amount": 100, "currency": "USD", "payment_method": CARD, "metadata": ["a"]},
    {"amount": 100, "currency": "USD", "payment_method": CARD, "external_identifier": "x" * 201},
    {"amount": 100, "currency": "USD", "payment_method": CARD, "previous_scheme_transaction_id": ""},
    {"amount": 100, "currency": "USD", "payment_method": CARD, "buyer_id": "nobody"},
    {"amount": 100, "currency": "USD", "payment_method": CARD, "buyer_id": "a", "buyer_external_identifier": "b"},
    {"amount": 100, "currency": "USD", "payment_method": CARD, "buyer": {"billing_details": {"address": 5}}},
    {"amount": 100, "currency": "USD", "payment_method": CARD, "country": "usa"},
    {"amount": 100, "currency": "USD", "payment_method": CARD, "async_capture": True},
]


@pytest.mark.parametrize("body", BAD_TRANSACTIONS)
def test_bad_transaction_bodies_are_400_with_details(http, body):
    body = assert_gr4vy_error(http("POST", "/transactions", json=body), 400)
    assert body["code"] == "bad_request" and body["details"]
    assert all(d["location"] == "body" and d["pointer"].startswith("/") for d in body["details"])


@pytest.mark.parametrize("method", [[], {}, ["card"], {"card": "id"}])
def test_a_non_string_payment_method_is_the_400_of_an_unknown_method(http, server, pem, method):
    # A list or object as the union's discriminator used to be looked up as a dict key: a
    # TypeError (unhashable) and a 500. The SDK's models refuse such a body, so plain requests.
    unknown = http("POST", "/transactions", json={"amount": 100, "currency": "USD",
                                                  "payment_method": {**CARD, "method": "bogus"}})
    expected = assert_gr4vy_error(unknown, 400)
    assert expected["details"][0]["pointer"] == "/payment_method/method"
    stored = client(server, pem).payment_methods.create(request_body=CARD)
    for payment_method in ({**CARD, "method": method}, {"method": method, "id": stored.id}):
        resp = http("POST", "/transactions", json={"amount": 100, "currency": "USD", "store": True,
                                                   "payment_method": payment_method})
        assert assert_gr4vy_error(resp, 400) == expected
    assert client(server, pem).transactions.list().result.items == []

@pytest.mark.parametrize("raw", [b"{", b"[1, 2]", b"null", b"\xff\xfe", b'"text"', b"123"])
def test_malformed_or_non_object_bodies_are_400(http, raw):
    resp = http("POST", "/transactions", data=raw, headers={"content-type": "application/json"})
    assert_gr4vy_error(resp, 400)


@pytest.mark.parametrize("path,body", [
    ("/payment-methods", {"method": "card"}),
    ("/payment-methods", {"method": "paypal"}),
    ("/payment-methods", []),
    ("/buyers", {"display_name": ""}),
    ("/buyers", {"billing_details": {"email_address": "not-an-email"}}),
    ("/buyers", {"billing_details": {"phone_number": "12345"}}),
    ("/buyers", {"billing_details": {"address": {"country": "Great Britain"}}}),
])
def test_bad_vault_bodies_are_400(http, path, body):
    assert_gr4vy_error(http("POST", path, json=body), 400)


@pytest.mark.parametrize("query", [{"limit": "abc"}, {"limit": "101"}, {"cursor": "garbage!"},
                                   {"cursor": "eyJvIjogLTF9"}, {"amount_eq": "x"},
                                   {"created_at_gte": "yesterday"}, {"metadata": "notjson"},
                                   {"has_refunds": "maybe"},
                                   # more digits than Python converts (4,300), and a doubled sign:
                                   # int() raised ValueError past the checks, a 500 (the SDK's own
                                   # int-to-text conversion cannot send the first two)
                                   {"limit": "9" * 5000}, {"amount_eq": "9" * 5000}, {"amount_gte": "--5"}])
def test_bad_list_queries_are_400(http, query):
    body = assert_gr4vy_error(http("GET", "/transactions", params=query), 400)
    assert body["details"][0]["location"] == "query"


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("query", [
    {"cursor": _cursor(b'{"o": Infinity}')},                       # int(inf): OverflowError
    {"cursor": _cursor(b'{"o": ' + b"[" * 5000 + b"}")},           # json.loads: RecursionError
    {"metadata": ["[" * 5000]},                                     # json.loads: RecursionError
    {"created_at_gte": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))},   # to UTC: OverflowError
], ids=["cursor-infinity", "cursor-deep", "metadata-deep", "created-before-year-1"])
def test_list_queries_the_sdk_can_send_that_used_to_be_a_500(server, pem, query):
    with pytest.raises(errors.Error400) as exc:
        client(server, pem).transactions.list(**query)
    assert exc.value.data.details[0].location == "query"
    assert exc.value.data.details[0].pointer == "/" + next(iter(query))


def test_bad_follow_up_bodies_are_400(http, pem, server):
    tx = client(server, pem).transactions.create(amount=100, currency="USD", payment_method=CARD)
    for path, body in [(f"/transactions/{tx.id}/capture", {"amount": "all"}),
                       (f"/transactions/{tx.id}/capture", {"amount": 0}),
                       (f"/transactions/{tx.id}/capture", {"final": False}),
                       (f"/transactions/{tx.id}/refunds", {"amount": -5}),
                       (f"/transactions/{tx.id}/refunds", {"reason": "x" * 101})]:
        assert_gr4vy_error(http("POST", path, json=body), 400)


def test_unknown_paths_and_methods(http):
    assert_gr4vy_error(http("GET", "/nothing-here"), 404)
    assert_gr4vy_error(http("DELETE", "/transactions"), 405)
    assert_gr4vy_error(http("PUT", "/refunds/abc"), 405)


def test_too_long_idempotency_key_is_400(http):
    body = assert_gr4vy_error(http("POST", "/transactions", json={"amount": 1, "currency": "USD", "payment_method": CARD},
                                   headers={"idempotency-key": "k" * 256}), 400)
    assert body["details"][0]["location"] == "header"


def test_oversized_body_is_refused_without_a_500(http):
    resp = http("POST", "/transactions", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                headers={"content-type": "application/json"})
    assert resp.status_code == 413 and resp.json()["type"] == "error"


def test_the_sdk_raises_its_own_exception_for_every_error(server, pem):
    sdk = client(server, pem)
    tx = sdk.transactions.create(amount=100, currency="USD", payment_method=CARD)
    buyer = sdk.buyers.create(external_identifier="taken")
    cases = [
        (errors.Error400, lambda: sdk.transactions.create(amount=100, currency="usd", payment_method=CARD)),
        (errors.Error400, lambda: sdk.transactions.refunds.create(transaction_id=tx.id, amount=10)),
        (errors.Error400, lambda: sdk.transactions.list(limit=500)),
        (errors.Error401, lambda: client(server, None, bearer_auth="not-a-jwt").transactions.list()),
        (errors.Error403, lambda: client(server, None, bearer_auth=auth.get_token(pem, scopes=["buyers.read"]))
         .transactions.list()),
        (errors.Error404, lambda: sdk.transactions.get(transaction_id="missing")),
        (errors.Error404, lambda: sdk.buyers.delete(buyer_id="missing")),
        (errors.Error409, lambda: sdk.buyers.create(external_identifier="taken")),
    ]
    for exc_type, call in cases:
        with pytest.raises(exc_type) as exc:
            call()
        assert not isinstance(exc.value, errors.ResponseValidationError)
        assert exc.value.data.TYPE == "error" and exc.value.data.message
        assert exc.value.status_code == exc.value.data.status
    assert buyer.id


def test_failed_validation_writes_nothing(http, pem, server):
    http("POST", "/transactions", json={"amount": 100, "currency": "USD", "payment_method": CARD,
                                        "store": True, "buyer_id": "nobody"})
    sdk = client(server, pem)
    assert sdk.transactions.list().result.items == []
    assert sdk.payment_methods.list().result.items == []


def test_journal_masks_card_numbers(http, server):
    http("POST", "/transactions", json={"amount": 100, "currency": "USD", "payment_method": CARD})
    text = json.dumps(server.journal(provider="gr4vy"))
    assert "4111111111111111" not in text and "411111******1111" in text


def test_journal_shows_every_id_whole_even_where_its_digits_look_like_a_card_number(server, pem):
    # about one random UUID in thirty has twelve digits across its dashes: forty transactions
    # (each answer carrying several UUIDs) include such ids, which the journal used to star out
    sdk = client(server, pem)
    created = [sdk.transactions.create(amount=100, currency="USD", payment_method=CARD) for _ in range(40)]
    ids = {(t.id, t.payment_method.id, t.payment_service.id, t.payment_service_transaction_id) for t in created}
    answers = [e["response"] for e in server.journal(provider="gr4vy") if e["method"] == "POST"]
    assert {(a["id"], a["payment_method"]["id"], a["payment_service"]["id"], a["payment_service_transaction_id"])
            for a in answers} == ids
