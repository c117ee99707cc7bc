"""Tokens (public key), customers and instruments as far as a stored-card flow needs them."""
import pytest
from checkout_sdk.common.common import UpdateCustomerRequest
from checkout_sdk.customers.customers import CustomerRequest
from checkout_sdk.exception import CheckoutApiException
from checkout_sdk.instruments.instruments import (CreateCustomerInstrumentRequest, CreateTokenInstrumentRequest,
                                                   UpdateCardInstrumentRequest)
from checkout_sdk.payments.payments import PaymentCustomerRequest, PaymentRequestTokenSource, RequestCustomerSource
from checkout_sdk.tokens.tokens import CardTokenRequest

from cko_helpers import card_source, id_source, payment_request

NO_SUCH_CUSTOMER = "cus_" + "a" * 26


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


def _customer(api, email):
    req = CustomerRequest()
    req.email = email
    return api.customers.create(req).id


def _instrument(api, customer_id=None, default=False):
    req = CreateTokenInstrumentRequest()
    req.token = token(api).token
    if customer_id:
        req.customer = CreateCustomerInstrumentRequest()
        req.customer.id, req.customer.default = customer_id, default
    return api.instruments.create(req)


def _update_customer(api, instrument_id, **customer):
    upd = UpdateCardInstrumentRequest()
    upd.customer = UpdateCustomerRequest()
    for key, value in customer.items():   # the SDK sends whatever is set, e-mail included
        setattr(upd.customer, key, value)
    return api.instruments.update(instrument_id, upd)


def test_a_refused_token_payment_leaves_the_token_for_the_corrected_retry(api):
    tok = token(api).token
    typo = PaymentCustomerRequest()
    typo.id = NO_SUCH_CUSTOMER
    with pytest.raises(CheckoutApiException) as err:
        api.payments.request_payment(payment_request(token_source(tok), customer=typo), idempotency_key="order-42")
    assert err.value.error_details == ["customer_not_found"]
    pay = api.payments.request_payment(payment_request(token_source(tok)), idempotency_key="order-42")
    assert pay.http_metadata.status_code == 201 and pay.approved is True
    with pytest.raises(CheckoutApiException) as err:   # still single-use
        api.payments.request_payment(payment_request(token_source(tok)))
    assert err.value.error_details == ["token_used"]


def test_a_refused_instrument_leaves_the_token_for_the_corrected_retry(api):
    req = CreateTokenInstrumentRequest()
    req.token = token(api).token
    req.customer = CreateCustomerInstrumentRequest()
    req.customer.id = NO_SUCH_CUSTOMER
    with pytest.raises(CheckoutApiException) as err:
        api.instruments.create(req)
    assert err.value.error_details == ["customer_not_found"]
    req.customer.id = _customer(api, "fixed@example.com")
    inst = api.instruments.create(req)
    assert inst.http_metadata.status_code == 201 and inst.customer.id == req.customer.id
    with pytest.raises(CheckoutApiException) as err:
        api.instruments.create(req)
    assert err.value.error_details == ["token_used"]


def test_instrument_update_moves_the_card_to_another_customer_as_its_default(api):
    one, two = _customer(api, "one@example.com"), _customer(api, "two@example.com")
    inst = _instrument(api, one, default=True)
    assert api.customers.get(one).default == inst.id
    assert _update_customer(api, inst.id, id=two, default=True).fingerprint == inst.fingerprint
    moved = api.instruments.get(inst.id).customer
    assert (moved.id, moved.default) == (two, True)
    assert api.customers.get(two).default == inst.id
    assert [i.id for i in api.customers.get(two).instruments] == [inst.id]
    left = api.customers.get(one)
    assert getattr(left, "default", None) is None and left.instruments == []   # no card chosen for it
    src = RequestCustomerSource()
    src.id = two
    assert api.payments.request_payment(payment_request(src, merchant_initiated=True)).source.id == inst.id


def test_instrument_update_names_the_customer_by_email_or_keeps_its_own(api):
    one = _customer(api, "own@example.com")
    first, second = _instrument(api, one, default=True), _instrument(api, one)
    assert api.customers.get(one).default == first.id
    _update_customer(api, second.id, default=True)   # no id: the instrument's own customer
    assert api.customers.get(one).default == second.id
    other = _customer(api, "Other@Example.com")
    _update_customer(api, first.id, email="other@example.com", default=True)
    assert api.instruments.get(first.id).customer.id == other
    assert api.customers.get(other).default == first.id


@pytest.mark.parametrize("customer", [{"id": NO_SUCH_CUSTOMER}, {"email": "nobody@example.com", "default": True}])
def test_instrument_update_with_an_unknown_customer_is_422_and_changes_nothing(api, customer):
    one = _customer(api, "kept@example.com")
    inst = _instrument(api, one, default=True)
    upd = UpdateCardInstrumentRequest()
    upd.expiry_year = 2033
    upd.customer = UpdateCustomerRequest()
    for key, value in customer.items():
        setattr(upd.customer, key, value)
    with pytest.raises(CheckoutApiException) as err:
        api.instruments.update(inst.id, upd)
    assert err.value.http_metadata.status_code == 422
    assert err.value.error_details == ["customer_not_found"]
    after = api.instruments.get(inst.id)
    assert after.expiry_year == 2030 and after.customer.id == one   # nothing half-written
    with pytest.raises(CheckoutApiException):   # an update creates no customer
        api.customers.get("nobody@example.com")


def test_instrument_update_default_without_any_customer_is_422(api):
    inst = _instrument(api)
    with pytest.raises(CheckoutApiException) as err:
        _update_customer(api, inst.id, default=True)
    assert err.value.error_details == ["customer_id_required"]


def _new_customer(api, email, default=None):
    req = CustomerRequest()
    req.email = email
    if default:
        req.default = default
    return api.customers.create(req).id


def _pay_by_customer(api, customer_id):
    src = RequestCustomerSource()
    src.id = customer_id
    return api.payments.request_payment(payment_request(src, merchant_initiated=True))


@pytest.mark.parametrize("how", ["update", "create"])
def test_a_customer_given_another_customers_card_as_default_takes_it_from_that_customer(api, how):
    one = _customer(api, "first@example.com")
    inst = _instrument(api, one, default=True)
    if how == "update":
        two = _customer(api, "second@example.com")
        upd = CustomerRequest()
        upd.default = inst.id
        assert api.customers.update(two, upd).http_metadata.status_code == 204
    else:
        two = _new_customer(api, "second@example.com", default=inst.id)
    taker = api.customers.get(two)
    assert taker.default == inst.id and [i.id for i in taker.instruments] == [inst.id]
    assert api.instruments.get(inst.id).customer.id == two
    left = api.customers.get(one)
    assert getattr(left, "default", None) is None and left.instruments == []
    with pytest.raises(CheckoutApiException) as err:   # the card is no longer the first customer's to charge
        _pay_by_customer(api, one)
    assert err.value.error_details == ["customer_source_invalid"]
    assert _pay_by_customer(api, two).source.id == inst.id


def _pay_for(api, email, source=None):
    customer = PaymentCustomerRequest()
    customer.email = email
    return api.payments.request_payment(payment_request(source or card_source(), customer=customer))


def test_the_same_card_paid_for_two_customers_is_a_stored_card_of_each(api):
    first = _pay_for(api, "alice@example.com")
    second = _pay_for(api, "bob@example.com")
    assert first.source.fingerprint == second.source.fingerprint and first.source.id != second.source.id
    alice, bob = api.customers.get(first.customer.id), api.customers.get(second.customer.id)
    assert alice.default == first.source.id and [i.id for i in alice.instruments] == [first.source.id]
    assert bob.default == second.source.id and [i.id for i in bob.instruments] == [second.source.id]
    assert api.instruments.get(first.source.id).customer.id == alice.id
    assert _pay_for(api, "alice@example.com").source.id == first.source.id   # still one per customer


def test_paying_with_another_customers_stored_card_leaves_it_with_its_customer(api):
    first = _pay_for(api, "owner@example.com")
    other = _pay_for(api, "someone@example.com", source=id_source(first.source.id))
    assert other.approved is True and other.source.id == first.source.id
    assert api.instruments.get(first.source.id).customer.id == first.customer.id
    assert api.customers.get(first.customer.id).default == first.source.id
    someone = api.customers.get(other.customer.id)
    assert getattr(someone, "default", None) is None and someone.instruments == []


def test_deleting_a_customers_default_card_leaves_the_customer_without_a_default(api):
    one = _customer(api, "deleted-card@example.com")
    inst = _instrument(api, one, default=True)
    assert api.instruments.delete(inst.id).http_metadata.status_code == 204
    left = api.customers.get(one)
    assert getattr(left, "default", None) is None and left.instruments == []
    with pytest.raises(CheckoutApiException) as err:
        _pay_by_customer(api, one)
    never = _customer(api, "never-had-a-card@example.com")
    with pytest.raises(CheckoutApiException) as same:
        _pay_by_customer(api, never)
    assert err.value.http_metadata.status_code == same.value.http_metadata.status_code == 422
    assert err.value.error_details == same.value.error_details == ["customer_source_invalid"]


def test_deleting_a_customer_deletes_its_cards_and_leaves_other_customers_cards(api):
    paid = _pay_for(api, "leaving@example.com")
    second = _instrument(api, paid.customer.id)
    kept = _pay_for(api, "staying@example.com")   # the same card, stored for someone else
    assert api.customers.delete(paid.customer.id).http_metadata.status_code == 204
    for src in (paid.source.id, second.id):
        with pytest.raises(CheckoutApiException) as gone:
            api.instruments.get(src)
        assert gone.value.http_metadata.status_code == 404
        with pytest.raises(CheckoutApiException) as renewal:
            api.payments.request_payment(payment_request(id_source(src), merchant_initiated=True))
        assert renewal.value.http_metadata.status_code == 422
        assert renewal.value.error_details == ["source_id_unknown"]
    assert api.instruments.get(kept.source.id).customer.id == kept.customer.id
    assert api.payments.request_payment(payment_request(id_source(kept.source.id), merchant_initiated=True)).approved
    # the payment made before keeps naming the customer it was made for
    assert api.payments.get_payment_details(paid.id).customer.id == paid.customer.id
    again = _pay_for(api, "leaving@example.com")
    assert again.customer.id != paid.customer.id and again.source.id not in (paid.source.id, second.id)


def test_a_card_deleted_while_its_payment_awaits_3ds_is_not_stored_again(server, api):
    inst = _instrument(api)
    pending = api.payments.request_payment(payment_request(id_source(inst.id), three_ds={"enabled": True}))
    assert pending.status == "Pending"
    api.instruments.delete(inst.id)
    assert server.hosted("checkout", pending.id).status_code == 200
    paid = api.payments.get_payment_details(pending.id)
    assert paid.approved is True and not hasattr(paid.source, "id")


def test_a_vault_an_older_sandbox_kept_reads_as_a_fixed_one(server, api):
    # state files from before these fixes may hold a default whose card was deleted, and schemes in capitals
    one = _customer(api, "old-file@example.com")
    inst = _instrument(api, one, default=True)
    machine = server.sandbox.providers["checkout"].machine
    with machine.store.lock:
        kept = machine.store.get("instrument", inst.id)
        tenant = machine.store.tenant_of("instrument", inst.id)
        machine.store.put("instrument", inst.id, {**kept, "scheme": "VISA"}, tenant)
    assert api.instruments.get(inst.id).scheme == "Visa"
    with machine.store.lock:
        machine.store.delete("instrument", inst.id)   # as DELETE /instruments once did: the default stays
    assert api.customers.get(one).default == inst.id
    with pytest.raises(CheckoutApiException) as err:
        _pay_by_customer(api, one)
    assert err.value.error_details == ["customer_source_invalid"]
