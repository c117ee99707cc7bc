"""The seed guide's recurring flags (payment_source, merchant_initiated, is_subsequent_payment,
previous_scheme_transaction_id) through the official SDK."""
import pytest
from gr4vy import errors
from gr4vy_helpers import CARD, client, new_key

CVV_REQUIRED = {"method": "card", "number": "4000000000000101", "expiration_date": "12/30"}
MIT_LINK_REQUIRED = {"method": "card", "number": "4000000000000200", "expiration_date": "12/30"}


@pytest.fixture
def sdk(server):
    pem, _ = new_key()
    return client(server, pem)


def first_cit(sdk, **extra):
    return sdk.transactions.create(amount=1500, currency="USD", country="US", intent="capture",
                                   payment_method=CARD, store=True, payment_source="recurring",
                                   merchant_initiated=False, is_subsequent_payment=False, **extra)


def test_cit_stores_the_card_and_returns_a_scheme_transaction_id(sdk):
    cit = first_cit(sdk, external_identifier="sub-1-first", metadata={"plan": "gold"})
    assert cit.status == "capture_succeeded"
    assert cit.intent_outcome == "succeeded"
    assert cit.scheme_transaction_id and cit.scheme_transaction_id.isdigit()
    assert cit.payment_source == "recurring" and cit.merchant_initiated is False
    assert cit.cvv_response_code == "match"
    assert cit.external_identifier == "sub-1-first" and cit.metadata == {"plan": "gold"}
    pm = sdk.payment_methods.get(payment_method_id=cit.payment_method.id)
    assert pm.status == "succeeded"
    assert pm.label == "1111" and pm.scheme == "visa" and pm.expiration_date == "12/30"
    # the stored method remembers the CIT that anchors the series
    assert pm.scheme_transaction_id == cit.scheme_transaction_id
    assert pm.scheme_transaction_id_scheme == "visa"
    assert pm.cit_usage_count == 1 and pm.usage_count == 1


def test_merchant_initiated_subsequent_charges_with_the_vaulted_id(sdk):
    cit = first_cit(sdk)
    charges = [sdk.transactions.create(amount=1500, currency="USD", intent="capture",
                                       payment_method={"method": "id", "id": cit.payment_method.id},
                                       payment_source="recurring", merchant_initiated=True,
                                       is_subsequent_payment=True, idempotency_key=f"renewal-{n}")
               for n in range(3)]
    for charge in charges:
        assert charge.status == "capture_succeeded"
        assert charge.merchant_initiated is True and charge.is_subsequent_payment is True
        assert charge.payment_method.id == cit.payment_method.id
        assert charge.instrument_type == "card_token"
        assert charge.cvv_response_code == "not_provided"
    pm = sdk.payment_methods.get(payment_method_id=cit.payment_method.id)
    assert pm.usage_count == 4 and pm.cit_usage_count == 1
    assert pm.scheme_transaction_id == cit.scheme_transaction_id   # MITs never move the anchor


def test_mit_with_a_raw_card_and_previous_scheme_transaction_id(sdk):
    cit = sdk.transactions.create(amount=900, currency="USD", payment_method=CARD, payment_source="installment",
                                  merchant_initiated=False)
    assert cit.scheme_transaction_id
    mit = sdk.transactions.create(amount=900, currency="USD",
                                  payment_method={k: v for k, v in CARD.items() if k != "security_code"},
                                  payment_source="installment", merchant_initiated=True, is_subsequent_payment=True,
                                  previous_scheme_transaction_id=cit.scheme_transaction_id)
    assert mit.status == "authorization_succeeded"
    assert mit.is_subsequent_payment is True
    assert mit.payment_method.id is None   # nothing was vaulted


def test_mit_with_a_raw_card_and_no_link_to_a_cit_is_approved_by_default(sdk):
    # The guide only recommends previous_scheme_transaction_id here; leaving it out declines nothing.
    mit = sdk.transactions.create(amount=900, currency="USD",
                                  payment_method={k: v for k, v in CARD.items() if k != "security_code"},
                                  payment_source="recurring", merchant_initiated=True, is_subsequent_payment=True)
    assert mit.status == "authorization_succeeded"
    assert mit.intent_outcome == "succeeded"
    assert mit.error_code is None and mit.raw_response_code == "00"
    assert mit.scheme_transaction_id and mit.authorized_amount == 900
    assert mit.payment_method.id is None   # nothing was vaulted


def test_mit_without_a_link_on_the_link_required_card_is_declined(sdk):
    mit = sdk.transactions.create(amount=900, currency="USD", payment_method=MIT_LINK_REQUIRED,
                                  payment_source="recurring", merchant_initiated=True, is_subsequent_payment=True)
    assert mit.status == "authorization_declined"
    assert mit.intent_outcome == "failed"
    assert mit.error_code == "issuer_decline"
    assert mit.raw_response_code == "mit_not_linked"
    assert mit.scheme_transaction_id is None
    assert mit.authorized_amount == 0
    # the customer-initiated payment on it is approved, and an MIT naming that payment is too
    cit = sdk.transactions.create(amount=900, currency="USD",
                                  payment_method={**MIT_LINK_REQUIRED, "security_code": "123"},
                                  payment_source="recurring", merchant_initiated=False, store=True)
    assert cit.status == "authorization_succeeded"
    linked = sdk.transactions.create(amount=900, currency="USD", payment_method=MIT_LINK_REQUIRED,
                                     payment_source="recurring", merchant_initiated=True, is_subsequent_payment=True,
                                     previous_scheme_transaction_id=cit.scheme_transaction_id)
    assert linked.status == "authorization_succeeded"
    # a vaulted method links itself
    stored = sdk.transactions.create(amount=900, currency="USD",
                                     payment_method={"method": "id", "id": cit.payment_method.id},
                                     payment_source="recurring", merchant_initiated=True, is_subsequent_payment=True)
    assert stored.status == "authorization_succeeded"


def test_vaulted_card_mit_links_itself_without_previous_scheme_transaction_id(sdk):
    pm = sdk.payment_methods.create(request_body={"method": "card", "number": "5555555555554444",
                                                  "expiration_date": "11/29"})
    assert pm.scheme == "mastercard" and pm.scheme_transaction_id is None
    mit = sdk.transactions.create(amount=700, currency="EUR", payment_method={"method": "id", "id": pm.id},
                                  payment_source="card_on_file", merchant_initiated=True, is_subsequent_payment=True)
    assert mit.status == "authorization_succeeded"


def test_is_subsequent_payment_is_ignored_with_ecommerce(sdk):
    tx = sdk.transactions.create(amount=500, currency="USD", payment_method=CARD, is_subsequent_payment=True)
    assert tx.payment_source == "ecommerce"
    assert tx.is_subsequent_payment is False
    explicit = sdk.transactions.create(amount=500, currency="USD", payment_method=CARD, payment_source="moto",
                                       is_subsequent_payment=True)
    assert explicit.is_subsequent_payment is False
    honoured = sdk.transactions.create(amount=500, currency="USD", payment_method=CARD,
                                       payment_source="card_on_file", is_subsequent_payment=True)
    assert honoured.is_subsequent_payment is True
    listed = sdk.transactions.list(is_subsequent_payment=True).result.items
    assert [t.id for t in listed] == [honoured.id]


def test_cit_without_cvv_on_the_cvv_required_card_is_declined(sdk):
    declined = sdk.transactions.create(amount=1000, currency="USD", payment_method=CVV_REQUIRED,
                                       payment_source="recurring", merchant_initiated=False, store=True)
    assert declined.status == "authorization_declined"
    assert declined.error_code == "issuer_decline"
    assert declined.raw_response_code == "cvv_required"
    assert declined.cvv_response_code == "not_provided"
    assert declined.payment_method.id is None   # a declined CIT vaults nothing
    approved = sdk.transactions.create(amount=1000, currency="USD",
                                       payment_method={**CVV_REQUIRED, "security_code": "123"},
                                       payment_source="recurring", merchant_initiated=False, store=True)
    assert approved.status == "authorization_succeeded"
    # the warning concerns CITs: the follow-up MIT on the stored card needs no CVV
    mit = sdk.transactions.create(amount=1000, currency="USD",
                                  payment_method={"method": "id", "id": approved.payment_method.id},
                                  payment_source="recurring", merchant_initiated=True, is_subsequent_payment=True)
    assert mit.status == "authorization_succeeded"
    # a customer-present charge on the stored card needs the CVV again
    stored = {"method": "id", "id": approved.payment_method.id}
    cit = sdk.transactions.create(amount=1000, currency="USD", payment_method=stored, merchant_initiated=False)
    assert (cit.status, cit.raw_response_code) == ("authorization_declined", "cvv_required")
    with_cvv = sdk.transactions.create(amount=1000, currency="USD", payment_method={**stored, "security_code": "123"},
                                       merchant_initiated=False)
    assert with_cvv.status == "authorization_succeeded"


def test_store_true_links_the_method_to_the_buyer(sdk):
    buyer = sdk.buyers.create(display_name="Ada", external_identifier="cust-1")
    cit = sdk.transactions.create(amount=100, currency="USD", payment_method=CARD, store=True,
                                  buyer_id=buyer.id, payment_source="recurring")
    assert cit.buyer.id == buyer.id
    listed = sdk.buyers.payment_methods.list(buyer_id=buyer.id)
    assert [m.id for m in listed.items] == [cit.payment_method.id]
    assert sdk.transactions.list(buyer_id=buyer.id).result.items[0].id == cit.id
    # a later charge by stored id carries the buyer along
    again = sdk.transactions.create(amount=100, currency="USD",
                                    payment_method={"method": "id", "id": cit.payment_method.id},
                                    payment_source="recurring", merchant_initiated=True, is_subsequent_payment=True)
    assert again.buyer.id == buyer.id


def test_stored_method_of_another_buyer_is_refused(sdk):
    ada = sdk.buyers.create(display_name="Ada")
    bob = sdk.buyers.create(display_name="Bob")
    cit = sdk.transactions.create(amount=100, currency="USD", payment_method=CARD, store=True, buyer_id=ada.id)
    with pytest.raises(errors.Error400) as exc:
        sdk.transactions.create(amount=100, currency="USD", buyer_id=bob.id,
                                payment_method={"method": "id", "id": cit.payment_method.id})
    assert exc.value.data.details[0].pointer == "/payment_method/id"
