"""The vault: payment methods, buyers and a buyer's payment methods, through the official SDK."""
import pytest
from gr4vy import errors
from gr4vy_helpers import CARD, client, new_key


@pytest.fixture
def sdk(server):
    return client(server, new_key()[0])


def store(sdk, **extra):
    body = {"method": "card", "number": "4111111111111111", "expiration_date": "12/30", **extra}
    return sdk.payment_methods.create(request_body=body)


def test_payment_method_create_get_list_delete(sdk):
    pm = store(sdk, external_identifier="card-1")
    assert pm.TYPE == "payment-method" and pm.method == "card" and pm.status == "succeeded"
    assert pm.label == "1111" and pm.details.bin == "411111" and pm.fingerprint
    assert pm.usage_count == 0 and pm.cit_usage_count == 0 and pm.scheme_transaction_id is None
    assert sdk.payment_methods.get(payment_method_id=pm.id).id == pm.id
    other = store(sdk, number="5555555555554444")
    listed = sdk.payment_methods.list()
    assert [m.id for m in listed.result.items] == [other.id, pm.id]
    assert [m.id for m in sdk.payment_methods.list(external_identifier="card-1").result.items] == [pm.id]
    paged = sdk.payment_methods.list(limit=1)
    assert len(paged.result.items) == 1 and paged.next() is not None
    assert sdk.payment_methods.delete(payment_method_id=pm.id) is None
    with pytest.raises(errors.Error404):
        sdk.payment_methods.get(payment_method_id=pm.id)
    with pytest.raises(errors.Error404):
        sdk.payment_methods.delete(payment_method_id=pm.id)
    with pytest.raises(errors.Error400) as exc:   # a deleted method cannot be charged
        sdk.transactions.create(amount=100, currency="USD", payment_method={"method": "id", "id": pm.id})
    assert exc.value.data.details[0].pointer == "/payment_method/id"


def test_same_card_gets_the_same_fingerprint(sdk):
    assert store(sdk).fingerprint == store(sdk).fingerprint != store(sdk, number="5555555555554444").fingerprint


def test_payment_method_validation(sdk):
    for body, pointer in [({"method": "card", "number": "4111", "expiration_date": "12/30"}, "/number"),
                          ({"method": "card", "number": "4111111111111111", "expiration_date": "13/30"},
                           "/expiration_date"),
                          ({"method": "card", "number": "4111111111111111", "expiration_date": "12/30",
                            "buyer_id": "unknown"}, "/buyer_id")]:
        with pytest.raises(errors.Error400) as exc:
            sdk.payment_methods.create(request_body=body)
        assert pointer in [d.pointer for d in exc.value.data.details], body


def test_buyers_create_get_update_list_delete(sdk):
    buyer = sdk.buyers.create(display_name="Ada Lovelace", external_identifier="cust-7",
                              billing_details={"first_name": "Ada", "last_name": "Lovelace",
                                               "email_address": "ada@example.com",
                                               "address": {"city": "London", "country": "GB", "postal_code": "N1"}})
    assert buyer.TYPE == "buyer" and buyer.merchant_account_id == "default" and buyer.reconciliation_id
    got = sdk.buyers.get(buyer_id=buyer.id)
    assert got.billing_details.address.city == "London"
    updated = sdk.buyers.update(buyer_id=buyer.id, display_name="Countess")
    assert updated.display_name == "Countess" and updated.external_identifier == "cust-7"
    bob = sdk.buyers.create(display_name="Bob")
    assert {b.id for b in sdk.buyers.list().result.items} == {buyer.id, bob.id}
    assert [b.id for b in sdk.buyers.list(search="count").result.items] == [buyer.id]
    assert [b.id for b in sdk.buyers.list(external_identifier="cust-7").result.items] == [buyer.id]
    assert sdk.buyers.delete(buyer_id=bob.id) is None
    with pytest.raises(errors.Error404):
        sdk.buyers.get(buyer_id=bob.id)


def test_payment_method_shows_its_buyer_as_it_is_now(sdk):
    bob = sdk.buyers.create(display_name="Bob", external_identifier="bob-1")
    pm = store(sdk, buyer_id=bob.id)
    assert (pm.buyer.id, pm.buyer.display_name, pm.buyer.external_identifier) == (bob.id, "Bob", "bob-1")
    cit = sdk.transactions.create(amount=100, currency="USD", payment_method=CARD, store=True, buyer_id=bob.id)
    updated = sdk.buyers.update(buyer_id=bob.id, display_name="Bobby", external_identifier="bob-2",
                                billing_details={"email_address": "bobby@example.com"})
    for method_id in (pm.id, cit.payment_method.id):   # vaulted directly, and by a transaction's store
        got = sdk.payment_methods.get(payment_method_id=method_id).buyer
        assert (got.id, got.display_name, got.external_identifier) == (bob.id, "Bobby", "bob-2")
        assert got.billing_details.email_address == "bobby@example.com"
        assert got.updated_at == updated.updated_at
    # the list filter and the objects it returns agree
    listed = sdk.payment_methods.list(buyer_external_identifier="bob-2").result.items
    assert {m.id for m in listed} == {pm.id, cit.payment_method.id}
    assert {m.buyer.external_identifier for m in listed} == {"bob-2"}
    assert sdk.payment_methods.list(buyer_external_identifier="bob-1").result.items == []
    # a transaction keeps the buyer it was made for
    assert sdk.transactions.get(transaction_id=cit.id).buyer.display_name == "Bob"
    # a method without a buyer has none
    assert store(sdk).buyer is None


def test_duplicate_buyer_external_identifier_is_a_409(sdk):
    first = sdk.buyers.create(external_identifier="dup")
    with pytest.raises(errors.Error409) as exc:
        sdk.buyers.create(external_identifier="dup")
    assert exc.value.data.code == "duplicate_record"
    assert exc.value.data.resource_id == first.id


def test_buyer_payment_methods(sdk):
    buyer = sdk.buyers.create(display_name="Ada", external_identifier="ada")
    card = store(sdk, buyer_id=buyer.id)
    other = store(sdk, buyer_external_identifier="ada", number="5555555555554444")
    store(sdk)   # nobody's
    sdk.transactions.create(amount=100, currency="USD", payment_method={"method": "id", "id": other.id},
                            merchant_initiated=False)
    listed = sdk.buyers.payment_methods.list(buyer_id=buyer.id)
    assert [m.id for m in listed.items] == [other.id, card.id]   # most recently used first
    by_ext = sdk.buyers.payment_methods.list(buyer_external_identifier="ada")
    assert {m.id for m in by_ext.items} == {card.id, other.id}
    assert [m.id for m in sdk.payment_methods.list(buyer_id=buyer.id).result.items] == [other.id, card.id]
    with pytest.raises(errors.Error404):
        sdk.buyers.payment_methods.list(buyer_id="unknown")


def test_buyer_payment_method_country_and_currency_filters_keep_methods_without_one(sdk):
    # Gr4vy (API docs, the SDK's docstrings): the filter "only applies to payment methods with a
    # `country` value", likewise `currency`. The sandbox's vaulted cards have neither, so no
    # filter may drop them.
    buyer = sdk.buyers.create(display_name="Ann", external_identifier="ann-1")
    cit = sdk.transactions.create(amount=1500, currency="EUR", country="DE", intent="capture", store=True,
                                  buyer_id=buyer.id, payment_method=CARD, payment_source="recurring",
                                  merchant_initiated=False, is_subsequent_payment=False)
    vaulted = store(sdk, buyer_id=buyer.id, number="5555555555554444")
    stored = sdk.payment_methods.get(payment_method_id=cit.payment_method.id)
    assert (stored.country, stored.currency) == (None, None)
    both = {cit.payment_method.id, vaulted.id}
    for query in ({"currency": "EUR"}, {"country": "DE"}, {"country": "US", "currency": "USD"}):
        assert {m.id for m in sdk.buyers.payment_methods.list(buyer_id=buyer.id, **query).items} == both, query
        assert {m.id for m in sdk.buyers.payment_methods.list(buyer_external_identifier="ann-1", **query).items} \
            == both, query


def test_deleting_a_buyer_deletes_its_payment_methods(sdk):
    buyer = sdk.buyers.create(display_name="Gone")
    cit = sdk.transactions.create(amount=100, currency="USD", payment_method=CARD, store=True, buyer_id=buyer.id)
    sdk.buyers.delete(buyer_id=buyer.id)
    with pytest.raises(errors.Error404):
        sdk.payment_methods.get(payment_method_id=cit.payment_method.id)
    # the transaction history stays
    assert sdk.transactions.get(transaction_id=cit.id).id == cit.id
