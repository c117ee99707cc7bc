"""Each defect of issue 10's hostile-input list, per provider, through the client its users use:
a lone surrogate, amounts past the provider's limit, redirect URLs that are not http(s), card
numbers written with spaces/dashes or in a query string, and CVVs, in the journal."""
from __future__ import annotations

import json
import re

import pytest
import requests
from checkout_sdk.exception import CheckoutApiException
from cko_helpers import card_source, payment_request, sdk
from hostile_helpers import CVV, PAN, object_keys
from gr4vy import errors as gr4vy_errors
from gr4vy_helpers import client as gr4vy_client

SURROGATE_BODY = '"\\ud83d"'   # the escape as it travels in JSON; json.loads turns it into a lone surrogate
MAX_MINOR = 2**31 - 1


def journal_text(server, provider) -> str:
    return json.dumps(server.journal(provider=provider), ensure_ascii=False)


def refused_without_trace(server, send, status: int):
    """``send()`` is refused with ``status`` and nothing is stored."""
    before = object_keys(server)
    resp = send()
    assert resp.status_code == status, resp.text
    assert object_keys(server) == before
    return resp


# -- Checkout.com (checkout-sdk) -------------------------------------------------------------
def test_checkout_lone_surrogate_is_malformed_and_creates_nothing(hostile):
    server = hostile.server
    api = sdk(server.url)
    before = object_keys(server)
    raw = json.dumps({"source": {"type": "card", "number": PAN, "expiry_month": 12, "expiry_year": 2030},
                      "amount": 100, "currency": "USD", "reference": "REPLACE"}).replace('"REPLACE"', SURROGATE_BODY)
    resp = hostile.send("checkout", "POST", "/payments", raw.encode())
    assert resp.status_code == 422 and resp.json()["error_codes"] == ["request_json_invalid"], resp.text
    assert object_keys(server) == before
    listed = hostile.send("checkout", "GET", "/payments?reference=x")
    assert listed.status_code == 200, listed.text
    # the SDK escapes the same surrogate in its own body: the same refusal
    with pytest.raises(CheckoutApiException) as exc:
        api.payments.request_payment(payment_request(card_source(), reference="\ud83d"))
    assert exc.value.http_metadata.status_code == 422
    assert object_keys(server) == before


@pytest.mark.parametrize("amount, accepted", [(MAX_MINOR, True), (MAX_MINOR + 1, False), (2**63, False)])
def test_checkout_amount_bound(hostile, amount, accepted):
    api = sdk(hostile.server.url)
    if accepted:
        payment = api.payments.request_payment(payment_request(card_source(), amount=amount))
        assert payment.amount == amount
        return
    before = object_keys(hostile.server)
    with pytest.raises(CheckoutApiException) as exc:
        api.payments.request_payment(payment_request(card_source(), amount=amount))
    assert exc.value.http_metadata.status_code == 422
    assert exc.value.error_details == ["amount_invalid"]
    assert object_keys(hostile.server) == before


@pytest.mark.parametrize("url", ["javascript:alert(1)", "https://shop.example/ok\n", "https://shop.example/\r\nX: y"])
def test_checkout_success_url_must_be_http(hostile, url):
    api = sdk(hostile.server.url)
    with pytest.raises(CheckoutApiException) as exc:
        api.payments.request_payment(payment_request(card_source(), success_url=url))
    assert exc.value.error_details == ["success_url_invalid"]


def test_checkout_spaced_card_number_and_cvv_never_journaled(hostile):
    # Checkout.com takes no separators in a card number: the request is refused, and its journal
    # entry must mask the number as written all the same
    api = sdk(hostile.server.url)
    with pytest.raises(CheckoutApiException) as exc:
        api.payments.request_payment(payment_request(card_source(number="4242 4242 4242 4242", cvv=CVV),
                                                     reference="card 4242-4242-4242-4242"))
    assert exc.value.error_details == ["card_number_invalid"]
    text = journal_text(hostile.server, "checkout")
    assert "4242 4242 4242 4242" not in text and "4242-4242-4242-4242" not in text and PAN not in text
    assert "4242 42** **** 4242" in text
    entry = next(e for e in hostile.server.journal(provider="checkout") if e["method"] == "POST")
    assert entry["request"]["source"]["cvv"] == "***"


@pytest.mark.parametrize("spelled", ["4242\u00a04242\u00a04242\u00a04242", "4242\t4242\n4242\r4242",
                                     "4242  4242   4242\u20034242"])
def test_checkout_card_number_with_any_whitespace_between_groups_is_masked_wherever_shown(hostile, spelled):
    # a card number with any whitespace in it is refused (no separators), and kept nowhere but the
    # journal; in a free-text field it is kept and shown: both must be masked however it is spelled
    api = sdk(hostile.server.url)
    with pytest.raises(CheckoutApiException) as exc:
        api.payments.request_payment(payment_request(card_source(number=spelled)))
    assert exc.value.error_details == ["card_number_invalid"]
    payment = api.payments.request_payment(payment_request(card_source(), reference=f"ref {spelled}"))
    assert payment.approved
    shown = [journal_text(hostile.server, "checkout"),
             requests.get(f"{hostile.server.url}/_sandbox/ui/objects/checkout/payment/{payment.id}", timeout=10).text,
             requests.get(f"{hostile.server.url}/_sandbox/objects/checkout/payment/{payment.id}/timeline",
                          timeout=10).text]
    for text in shown:
        # whatever the spelling on the page (a JSON escape, an HTML entity), no twelve digits in a row
        # survive once every character but the digits and the masks is dropped
        assert PAN not in re.sub(r"\\[tnr]|&[a-z#0-9]+;|[^0-9*]", "", text.replace("\\u00a0", "").replace("\\u2003", ""))
    assert any("4242" in text and "**" in text for text in shown)


def test_card_number_in_a_query_string_is_masked(hostile):
    assert hostile.send("checkout", "GET", f"/payments?reference={PAN}&cvv={CVV}").status_code == 200
    paths = [e["path"] for e in hostile.server.journal(provider="checkout")]
    assert paths[-1] == "/checkout/payments?reference=424242******4242&cvv=***"


def test_card_number_behind_percent_escapes_in_a_form_body_is_masked(hostile):
    # "%34%32..." holds no digit run as written: the journal must read the body as the form
    # parser does before deciding there is nothing to mask
    escaped = "".join(f"%{ord(c):02X}" for c in PAN)
    hostile.send("checkout", "POST", "/payments", f"number={escaped}&cvv={CVV}".encode(),
                 content_type="application/x-www-form-urlencoded")
    entry = next(e for e in reversed(hostile.server.journal(provider="checkout")) if e["method"] == "POST")
    assert entry["request"] == "number=424242******4242&cvv=***"


# -- Gr4vy (gr4vy SDK) -----------------------------------------------------------------------
def test_gr4vy_surrogate_amount_and_redirect(hostile):
    server = hostile.server
    raw = json.dumps({"amount": 100, "currency": "USD", "external_identifier": "REPLACE",
                      "payment_method": {"method": "card", "number": PAN, "expiration_date": "12/30"}})
    refused_without_trace(server, lambda: hostile.send(
        "gr4vy", "POST", "/transactions", raw.replace('"REPLACE"', SURROGATE_BODY).encode()), 400)
    sdk = gr4vy_client(server, hostile.gr4vy_private)
    card = {"method": "card", "number": PAN, "expiration_date": "12/30", "security_code": CVV}
    before = object_keys(server)
    for amount, method in ((2**63, card), (100, {**card, "redirect_url": "javascript:alert(1)"}),
                           (100, {**card, "redirect_url": "ftp://shop.example/r"})):
        with pytest.raises(gr4vy_errors.Error400):
            sdk.transactions.create(amount=amount, currency="USD", payment_method=method)
    assert object_keys(server) == before
    assert CVV not in journal_text(server, "gr4vy")


# -- Paysera (MAC-signed requests) -----------------------------------------------------------
def paysera_body(**extra):
    body = {"business_id": "LcKB4rs-pNVLgQKxZTaGzfZRAuiQPuyE", "order_id": "O-1",
            "price": {"amount": "10.00", "currency": "EUR"}, "description": "d", "method_key": "card",
            "payer": {"email": "c@shop.example"}, "locale": "en", "callback_url": "https://shop.example/cb"}
    body.update(extra)
    return body


PAYSERA_CREATE = "/checkout/rest/v1/payment-requests"


def test_paysera_surrogate_and_amount_bound(hostile):
    server = hostile.server
    raw = json.dumps(paysera_body(description="REPLACE")).replace('"REPLACE"', SURROGATE_BODY).encode()
    refused_without_trace(server, lambda: hostile.send("paysera", "POST", PAYSERA_CREATE, raw), 400)
    for amount in (2**63, MAX_MINOR + 1, "21474836.48", "1" * 40):
        resp = refused_without_trace(server, lambda: hostile.json(
            "paysera", "POST", PAYSERA_CREATE, paysera_body(price={"amount": amount, "currency": "EUR"})), 400)
        assert list(resp.json()["error_properties"]) == ["price.amount"], resp.text
    ok = hostile.json("paysera", "POST", PAYSERA_CREATE, paysera_body(price={"amount": MAX_MINOR, "currency": "EUR"}))
    assert ok.status_code == 200 and ok.json()["price"]["amount"] == MAX_MINOR


@pytest.mark.parametrize("field", ["accept_url", "cancel_url", "callback_url"])
def test_paysera_urls_must_be_http(hostile, field):
    resp = refused_without_trace(hostile.server, lambda: hostile.json(
        "paysera", "POST", PAYSERA_CREATE, paysera_body(**{field: "javascript:alert(1)"})), 400)
    assert field in resp.json()["error_properties"]


# -- Bank 131 (RSA-signed requests) ----------------------------------------------------------
def b131_payment(**options):
    return {"payment_details": {"type": "card", "card": {"type": "bank_card", "bank_card": {
        "number": PAN, "expiration_month": "12", "expiration_year": "30", "security_code": CVV}}},
        "amount_details": {"amount": 10000, "currency": "rub"}, "customer": {"reference": "lucky"},
        "payment_options": {"recurrent": True, **options}}


B131_INIT = "/api/v1/session/init/payment"


@pytest.mark.parametrize("return_url", ["javascript:alert(1)", "https://shop.example/\r\nSet-Cookie: a=b",
                                        "//shop.example/r", "data:text/html,x"])
def test_bank131_return_url_must_be_http(hostile, return_url):
    resp = refused_without_trace(hostile.server, lambda: hostile.json(
        "bank131", "POST", B131_INIT, b131_payment(return_url=return_url)), 400)
    assert resp.json()["status"] == "error" and "return_url" in resp.json()["error"]["description"]


def test_bank131_surrogate_and_amount_bound(hostile):
    server = hostile.server
    raw = json.dumps(b131_payment()).replace('"lucky"', SURROGATE_BODY).encode()
    refused_without_trace(server, lambda: hostile.send("bank131", "POST", B131_INIT, raw), 400)
    for amount in (2**63, MAX_MINOR + 1):
        body = b131_payment()
        body["amount_details"]["amount"] = amount
        resp = refused_without_trace(server, lambda: hostile.json("bank131", "POST", B131_INIT, body), 400)
        assert "amount_details.amount" in resp.json()["error"]["description"]
    body = b131_payment(return_url="https://shop.example/r")
    body["amount_details"]["amount"] = MAX_MINOR
    assert hostile.json("bank131", "POST", B131_INIT, body).status_code == 200
    text = journal_text(server, "bank131")
    assert PAN not in text and f'"security_code": "{CVV}"' not in text


# -- ZafaPay (bearer key) --------------------------------------------------------------------
@pytest.mark.parametrize("amount", ["1e30", "1e308", "-1e30", "NaN", "Infinity", "-Infinity", str(2**63)])
def test_zafapay_absurd_amounts_are_validation_errors(hostile, amount):
    raw = ('{"amount": %s, "currency": "usd"}' % amount).encode()
    resp = refused_without_trace(hostile.server, lambda: hostile.send("zafapay", "POST", "/v1/payments", raw), 400)
    assert resp.json()["error"]["type"] == "invalid_request_error", resp.text


def test_zafapay_surrogate_and_return_url(hostile):
    server = hostile.server
    raw = b'{"amount": 10, "currency": "usd", "metadata": {"k": "\\udc00"}}'
    refused_without_trace(server, lambda: hostile.send("zafapay", "POST", "/v1/payments", raw), 400)
    resp = refused_without_trace(server, lambda: hostile.json(
        "zafapay", "POST", "/v1/payments", {"amount": 10, "currency": "usd", "return_url": "javascript:alert(1)"}), 400)
    assert resp.json()["error"]["param"] == "return_url"


def test_zafapay_hosted_form_post_is_masked(hostile):
    created = hostile.json("zafapay", "POST", "/v1/payments", {"amount": 10, "currency": "usd"})
    assert created.status_code == 201, created.text
    page_url = created.json()["payment_url"]
    path, token = page_url.split("/zafapay", 1)[1].split("?token=")
    form = f"token={token}&action=pay&card_number=4242+4242+4242+4242&exp_month=12&exp_year=2030&cvc={CVV}"
    resp = hostile.send("zafapay", "POST", path, form.encode(), content_type="application/x-www-form-urlencoded")
    assert resp.status_code < 500
    posted = [e for e in hostile.server.journal(provider="zafapay") if e["method"] == "POST"][-1]["request"]
    assert "4242+42**+****+4242" in posted and f"cvc={CVV}" not in posted and "cvc=***" in posted
