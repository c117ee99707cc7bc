"""The payment and instrument transition tables: data for the docs, and the rules the API follows."""
import pytest
import requests
import yaml
from checkout_sdk.exception import CheckoutApiException
from checkout_sdk.instruments.instruments import UpdateCardInstrumentRequest

from cko_helpers import KEY, card_source, id_source, payment_request
from simulator.providers.checkout import Checkout
from simulator.providers.shape import status_table


def test_tables_name_every_status_the_api_shows():
    payment, instrument = Checkout.state_tables()
    assert set(payment.states) == {"Requested", "Pending", "Authorized", "Card Verified", "Declined", "Retry Scheduled",
                                   "Canceled", "Partially Captured", "Captured", "Voided", "Expired",
                                   "Partially Refunded", "Refunded"}
    assert set(instrument.states) == {"active", "inactive", "expired"}
    assert "| `Retry Scheduled` | cancel | `Canceled` |" in status_table(payment)


def _stored_card(api):
    return api.payments.request_payment(payment_request(card_source(), amount=0, payment_type="Regular")).source.id


def _renew(api, src):
    upd = UpdateCardInstrumentRequest()
    upd.expiry_year = 2032
    api.instruments.update(src, upd)


def _mit(api, src):
    return api.payments.request_payment(payment_request(id_source(src), merchant_initiated=True))


def test_a_new_expiry_does_not_bring_back_a_revoked_card(server, api):
    src = _stored_card(api)
    resp = requests.patch(f"{server.url}/checkout/instruments/{src}/revoke",
                          headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert resp.status_code == 204
    _renew(api, src)
    with pytest.raises(CheckoutApiException) as err:
        _mit(api, src)
    assert err.value.error_details == ["source_id_invalid"]


def test_a_card_a_scenario_expired_declines_until_its_expiry_is_updated(server, api):
    src = _stored_card(api)
    rule = {"name": "expire", "provider": "checkout", "method": "POST", "path": "/checkout/payments", "times": 1,
            "match": {"source.id": src}, "effect": {"token": "expired"}}
    assert server.admin("PUT", "/scenarios", data=yaml.safe_dump({"name": "expire", "rules": [rule]})).status_code == 200
    assert _mit(api, src).response_code == "20054"
    assert _mit(api, src).response_code == "20054"      # for good, though the rule fired once
    _renew(api, src)
    assert _mit(api, src).approved is True
