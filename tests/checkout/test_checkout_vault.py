"""Tokens (public key), customers and instruments as far as a stored-card flow needs them."""
import pytest
from checkout_sdk.customers.customers import CustomerRequest
from checkout_sdk.exception import CheckoutApiException
from checkout_sdk.instruments.instruments import (CreateCustomerInstrumentRequest, CreateTokenInstrumentRequest,
                                                   UpdateCardInstrumentRequest)
from checkout_sdk.payments.payments import PaymentRequestTokenSource, RequestCustomerSource
from checkout_sdk.tokens.tokens import CardTokenRequest

from cko_helpers import card_source, id_source, payment_request


def token(api, number="4242424242424242", month=12, year=2030):
    req = CardTokenRequest()
    req.number, req.expiry_month, req.expiry_year, req.cvv = number, month, year, "100"
    return api.tokens.request_card_token(req)


def token_source(tok):
    src = PaymentRequestTokenSource()
    src.token = tok
    return src


def test_token_is_single_use(api):
    tok = token(api)
    assert tok.token.startswith("tok_") and tok.last4 == "4242" and tok.bin == "424242"
    pay = api.payments.request_payment(payment_request(token_source(tok.token)))
    assert pay.approved is True and pay.source.id.startswith("src_")
    with pytest.raises(CheckoutApiException) as err:
        api.payments.request_payment(payment_request(token_source(tok.token)))
    assert err.value.error_details == ["token_used"]


def test_token_expires_after_15_minutes(server, api):
    tok = token(api)
    server.advance("PT16M")
    with pytest.raises(CheckoutApiException) as err:
        api.payments.request_payment(payment_request(token_source(tok.token)))
    assert err.value.error_details == ["token_expired"]


def test_token_keeps_the_test_card_behaviour_without_the_number(server, api):
    tok = token(api, "4544249167673670")
    pay = api.payments.request_payment(payment_request(token_source(tok.token)))
    assert pay.response_code == "20051"
    for entry in server.journal():
        assert "4544249167673670" not in str(entry)


def test_tokens_need_the_public_key(server):
    import requests
    resp = requests.post(f"{server.url}/checkout/tokens", json={"type": "card"},
                         headers={"Authorization": "Bearer sk_sbox_" + "a" * 27}, timeout=10)
    assert resp.status_code == 401


def test_customer_with_default_instrument_pays_by_customer_source(api):
    tok = token(api)
    cust = CustomerRequest()
    cust.email, cust.name = "jo@example.com", "Jo"
    created = api.customers.create(cust)
    assert created.http_metadata.status_code == 201 and created.id.startswith("cus_")
    inst_req = CreateTokenInstrumentRequest()
    inst_req.token = tok.token
    inst_req.customer = CreateCustomerInstrumentRequest()
    inst_req.customer.id = created.id
    inst_req.customer.default = True
    inst = api.instruments.create(inst_req)
    assert inst.http_metadata.status_code == 201 and inst.id.startswith("src_")
    assert inst.customer.default is True
    fetched = api.customers.get(created.id)
    assert fetched.default == inst.id and fetched.instruments[0].id == inst.id
    assert api.customers.get("jo@example.com").id == created.id

    src = RequestCustomerSource()
    src.id = created.id
    pay = api.payments.request_payment(payment_request(src, merchant_initiated=True))
    assert pay.approved is True and pay.source.id == inst.id


def test_payment_with_customer_email_creates_customer_and_default_card(api):
    from checkout_sdk.payments.payments import PaymentCustomerRequest
    customer = PaymentCustomerRequest()
    customer.email = "new@example.com"
    pay = api.payments.request_payment(payment_request(card_source(), customer=customer))
    assert pay.customer.id.startswith("cus_")
    assert api.customers.get(pay.customer.id).default == pay.source.id


def test_instrument_update_delete_and_revoke(api):
    pay = api.payments.request_payment(payment_request(card_source(), amount=0, payment_type="Regular"))
    src = pay.source.id
    upd = UpdateCardInstrumentRequest()
    upd.expiry_year = 2031
    assert api.instruments.update(src, upd).fingerprint == pay.source.fingerprint
    assert api.instruments.get(src).expiry_year == 2031
    api.instruments.delete(src)
    with pytest.raises(CheckoutApiException) as err:
        api.instruments.get(src)
    assert err.value.http_metadata.status_code == 404


def test_customer_update_and_delete_answer_204(api):
    cust = CustomerRequest()
    cust.email = "a@example.com"
    created = api.customers.create(cust)
    upd = CustomerRequest()
    upd.name = "Renamed"
    assert api.customers.update(created.id, upd).http_metadata.status_code == 204
    assert api.customers.get(created.id).name == "Renamed"
    assert api.customers.delete(created.id).http_metadata.status_code == 204
    with pytest.raises(CheckoutApiException):
        api.customers.get(created.id)


def test_revoked_instrument_stops_working(server, api):
    import requests
    pay = api.payments.request_payment(payment_request(card_source(), amount=0, payment_type="Regular"))
    resp = requests.patch(f"{server.url}/checkout/instruments/{pay.source.id}/revoke",
                          headers={"Authorization": "Bearer sk_sbox_" + "a" * 27}, timeout=10)
    assert resp.status_code == 204
    with pytest.raises(CheckoutApiException) as err:
        api.payments.request_payment(payment_request(id_source(pay.source.id), merchant_initiated=True))
    assert err.value.error_details == ["source_id_invalid"]
