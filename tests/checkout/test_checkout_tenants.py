"""Two secret keys are two tenants: neither sees the other's objects."""
import pytest
from checkout_sdk.exception import CheckoutApiException

from cko_helpers import OTHER_KEY, card_source, payment_request, sdk


def test_two_keys_two_tenants(server):
    mine, theirs = sdk(server.url), sdk(server.url, OTHER_KEY)
    pay = mine.payments.request_payment(payment_request(card_source(), amount=0, payment_type="Regular"))
    with pytest.raises(CheckoutApiException) as err:
        theirs.payments.get_payment_details(pay.id)
    assert err.value.http_metadata.status_code == 404
    with pytest.raises(CheckoutApiException) as err:
        theirs.payments.capture_payment(pay.id)
    assert err.value.http_metadata.status_code == 404
    with pytest.raises(CheckoutApiException) as err:
        theirs.instruments.get(pay.source.id)
    assert err.value.http_metadata.status_code == 404
    # the other tenant cannot charge this tenant's stored card either
    from cko_helpers import id_source
    with pytest.raises(CheckoutApiException) as err:
        theirs.payments.request_payment(payment_request(id_source(pay.source.id), merchant_initiated=True))
    assert err.value.error_details == ["source_id_unknown"]
    assert mine.payments.get_payment_details(pay.id).status == "Card Verified"


def test_reset_of_one_tenant_keeps_the_other(server):
    mine, theirs = sdk(server.url), sdk(server.url, OTHER_KEY)
    a = mine.payments.request_payment(payment_request(card_source()))
    b = theirs.payments.request_payment(payment_request(card_source()))
    server.admin("POST", "/reset", json={"tenant": "sk_sbox_" + "b" * 27})
    assert mine.payments.get_payment_details(a.id).id == a.id
    with pytest.raises(CheckoutApiException):
        theirs.payments.get_payment_details(b.id)


def test_per_tenant_clock(server):
    mine = sdk(server.url)
    server.advance("P10D", tenant="sk_sbox_" + "a" * 27)
    pay = mine.payments.request_payment(payment_request(card_source(), capture=False))
    assert pay.processed_on.startswith("2026-01-11")
    other = sdk(server.url, OTHER_KEY).payments.request_payment(payment_request(card_source(), capture=False))
    assert other.processed_on.startswith("2026-01-01")
