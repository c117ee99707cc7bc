"""Inputs the fuzzing found answered with a 500, now each provider's own validation error.

``str.isdigit()`` is also true for superscripts and other Unicode digits that ``int()`` refuses."""
import pytest

import signing
from simulator.testing import SandboxServer

ODD = "424242424242424\u00b2"   # a superscript two at the end


@pytest.fixture(scope="module")
def url():
    with SandboxServer({"seed": 1, "providers": {**signing.setup("checkout")[0], **signing.setup("paysera")[0],
                                                 **signing.setup("zafapay")[0]}}) as srv:
        yield srv.url


def test_card_number_with_a_unicode_digit_is_checkout_card_number_invalid(url):
    resp = signing.session(signing.Checkout()).post(f"{url}/checkout/payments", timeout=30, json={
        "source": {"type": "card", "number": ODD, "expiry_month": 12, "expiry_year": 2030},
        "amount": 100, "currency": "GBP"})
    assert resp.status_code == 422
    assert resp.json()["error_codes"] == ["card_number_invalid"]


def test_card_number_with_a_unicode_digit_is_a_zafapay_validation_error(url):
    resp = signing.session(signing.ZafaPay()).post(f"{url}/zafapay/v1/tokens", timeout=30, json={
        "card": {"number": ODD, "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("query", ["limit=%C2%B3", "amount_eq=%C2%B3"])
def test_gr4vy_query_integer_with_a_unicode_digit_is_400(query):
    providers, auth = signing.setup("gr4vy")
    with SandboxServer({"seed": 1, "providers": providers}) as srv:
        resp = signing.session(auth).get(f"{srv.url}/gr4vy/transactions?{query}", timeout=30)
    assert resp.status_code == 400
    assert resp.json()["details"][0]["location"] == "query"


def test_paysera_list_limit_with_a_unicode_digit_is_invalid_parameters(url):
    resp = signing.session(signing.Paysera()).get(
        f"{url}/paysera/checkout/rest/v1/payment-requests?limit=%C2%B3", timeout=30)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_parameters"


def test_paysera_mac_timestamp_with_a_unicode_digit_is_401(url):
    resp = signing.session(signing.Paysera(ts="17\u00b2")).get(
        f"{url}/paysera/checkout/rest/v1/payment-requests", timeout=30)
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthorized"
