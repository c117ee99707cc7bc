"""What the official SDKs' own integration tests expect of the provider, through checkout-sdk."""
from datetime import datetime, timezone

from checkout_sdk.common.common import Address, Phone
from checkout_sdk.common.enums import Country
from checkout_sdk.payments.payments import BillingDescriptor, CaptureRequest, PaymentRequestTokenSource, RefundRequest
from checkout_sdk.tokens.tokens import CardTokenRequest

from cko_helpers import card_source, payment_request

THIRD_PARTY_3DS = {"enabled": True, "eci": "05", "cryptogram": "AgAAAAAAAIR8CQrXcIhbQAAAAAA=",
                   "xid": "MDAwMDAwMDAwMDAwMDAwMzIyNzY=", "version": "2.0.1"}


def address():
    a = Address()
    a.address_line1, a.city, a.zip, a.country = "Checkout.com", "London", "W1T 4TJ", Country.GB
    return a


def phone():
    p = Phone()
    p.country_code, p.number = "44", "4155552671"
    return p


def test_every_action_carries_a_reference_key_even_the_auto_capture(api):
    pay = api.payments.request_payment(payment_request(card_source(), payment_type="Regular"))
    actions = api.payments.get_payment_actions(pay.id).items
    assert [a.type for a in actions] == ["Capture", "Authorization"]
    assert all("reference" in a.__dict__ for a in actions)
    assert actions[0].reference is None


def test_scheduled_capture_action_carries_a_reference_key(server, api):
    pay = api.payments.request_payment(payment_request(card_source(), payment_type="Regular",
                                                       capture_on=datetime(2026, 1, 2, tzinfo=timezone.utc)))
    server.advance("P1D")
    capture = api.payments.get_payment_actions(pay.id).items[0]
    assert capture.type == "Capture" and "reference" in capture.__dict__ and capture.reference is None


def test_third_party_3ds_authorizes_at_once_and_echoes_the_mpi_data(api):
    resp = api.payments.request_payment(payment_request(card_source(), three_ds=THIRD_PARTY_3DS))
    assert resp.http_metadata.status_code == 201
    assert resp.status == "Authorized" and resp.approved is True
    assert not hasattr(resp._links, "redirect")
    three_ds = getattr(resp, "3ds")
    assert (three_ds.cryptogram, three_ds.xid, three_ds.version) == (
        THIRD_PARTY_3DS["cryptogram"], THIRD_PARTY_3DS["xid"], "2.0.1")
    assert resp.eci == "05"
    details = api.payments.get_payment_details(resp.id)
    assert getattr(details, "3ds").cryptogram == THIRD_PARTY_3DS["cryptogram"] and details.eci == "05"


def test_third_party_3ds_that_failed_is_declined_not_challenged(api):
    resp = api.payments.request_payment(payment_request(card_source(), three_ds={**THIRD_PARTY_3DS, "status": "N"}))
    assert resp.http_metadata.status_code == 201
    assert resp.status == "Declined" and resp.response_code == "20151"


def test_third_party_3ds_without_a_cryptogram_is_refused(server):
    import requests
    from cko_helpers import KEY
    body = {"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
            "amount": 100, "currency": "GBP", "3ds": {"enabled": True, "eci": "05"}}
    r = requests.post(server.url + "/checkout/payments", json=body, headers={"Authorization": KEY}, timeout=10)
    assert r.status_code == 422 and r.json()["error_codes"] == ["3ds_cryptogram_required"]


def test_card_token_echoes_name_billing_address_and_phone(api):
    req = CardTokenRequest()
    req.number, req.expiry_month, req.expiry_year, req.cvv = "4543474002249996", 6, 2030, "956"
    req.name, req.billing_address, req.phone = "Bruce Wayne", address(), phone()
    token = api.tokens.request_card_token(req)
    assert token.http_metadata.status_code == 201
    assert token.name == "Bruce Wayne"
    assert token.billing_address.city == "London" and token.billing_address.country == "GB"
    assert token.phone.number == "4155552671"
    assert (token.scheme, token.bin, token.last4) == ("Visa", "454347", "9996")

    source = PaymentRequestTokenSource()
    source.token = token.token
    pay = api.payments.request_payment(payment_request(source, payment_type="Regular"))
    assert pay.source.billing_address.zip == "W1T 4TJ" and pay.source.phone.country_code == "44"
    assert pay.source.name == "Bruce Wayne" and pay.source.scheme == "Visa"


def test_card_source_echoes_billing_address_and_phone(api):
    card = card_source()
    card.billing_address, card.phone = address(), phone()
    pay = api.payments.request_payment(payment_request(card, payment_type="Regular"))
    assert pay.source.billing_address.address_line1 == "Checkout.com"
    details = api.payments.get_payment_details(pay.id)
    assert details.source.phone.number == "4155552671"


def test_payment_source_spells_the_card_as_the_seed_guide_does(api):
    # the guide's 201: "scheme": "Visa", "card_type": "CREDIT", "card_category": "CONSUMER"
    pay = api.payments.request_payment(payment_request(card_source(), payment_type="Regular"))
    assert (pay.source.scheme, pay.source.card_type, pay.source.card_category) == ("Visa", "CREDIT", "CONSUMER")
    assert api.payments.get_payment_details(pay.id).source.scheme == "Visa"
    for number, scheme in (("5436031030606378", "Mastercard"), ("378282246310005", "Amex"),
                           ("6011111111111117", "Discover"), ("3530111333300000", "JCB")):
        card = card_source(number, cvv="1000" if scheme == "Amex" else "100")
        assert api.payments.request_payment(payment_request(card, payment_type="Regular")).source.scheme == scheme


def test_scheme_is_spelled_alike_in_token_instrument_and_payment_source(api):
    from checkout_sdk.instruments.instruments import CreateTokenInstrumentRequest
    req = CardTokenRequest()
    req.number, req.expiry_month, req.expiry_year = "5436031030606378", 6, 2030
    token = api.tokens.request_card_token(req)
    inst_req = CreateTokenInstrumentRequest()
    inst_req.token = token.token
    inst = api.instruments.create(inst_req)
    pay = api.payments.request_payment(payment_request(card_source("5436031030606378"), payment_type="Regular"))
    assert token.scheme == inst.scheme == pay.source.scheme == "Mastercard"
    assert len(token.bin) == len(inst.bin) == len(pay.source.bin) == 6


def test_partial_capture_then_partial_refund_is_partially_refunded(api):
    pay = api.payments.request_payment(payment_request(card_source(), payment_type="Regular", capture=False))
    cap = CaptureRequest()
    cap.amount = 3000
    api.payments.capture_payment(pay.id, cap)
    assert api.payments.get_payment_details(pay.id).status == "Partially Captured"
    ref = RefundRequest()
    ref.amount = 1000
    api.payments.refund_payment(pay.id, ref)
    details = api.payments.get_payment_details(pay.id)
    assert details.status == "Partially Refunded"
    assert details.balances.total_refunded == 1000 and details.balances.available_to_refund == 2000
    api.payments.refund_payment(pay.id)
    assert api.payments.get_payment_details(pay.id).status == "Refunded"


def test_billing_descriptor_is_kept_and_shown_with_the_payment(api):
    descriptor = BillingDescriptor()
    descriptor.name, descriptor.city = "GYM*MONTHLY", "London"
    request = payment_request(card_source(), payment_type="Regular")
    request.billing_descriptor = descriptor
    pay = api.payments.request_payment(request)
    details = api.payments.get_payment_details(pay.id)
    assert (details.billing_descriptor.name, details.billing_descriptor.city) == ("GYM*MONTHLY", "London")
    plain = api.payments.get_payment_details(api.payments.request_payment(payment_request(card_source())).id)
    assert not hasattr(plain, "billing_descriptor")
