"""``transactions.list`` filters, each one both excluding and including through the official SDK,
and the request fields Gr4vy keeps on a transaction (``statement_descriptor``, ``cart_items``)."""
import os

import pytest
import requests
from gr4vy import auth, errors, models
from gr4vy_helpers import CARD, client
from simulator.testing import ServerProcess

# every response of these tests is checked against the provider's OpenAPI document
pytestmark = [pytest.mark.xdist_group("contract-gr4vy-filters"), pytest.mark.usefixtures("contract_checked")]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ABSENT = "0b5ec6b5-0ed0-4e40-a9b4-2f9a2b6d2c11"   # a well-formed id nothing in the sandbox has


def pay(sdk, amount=1000, **extra):
    return sdk.transactions.create(amount=amount, currency="USD", **{"payment_method": CARD, **extra})


def ids(sdk, **filters):
    return {t.id for t in sdk.transactions.list(**filters).result.items}


def raw_list(server, pem, params):
    return requests.get(f"{server.url}/gr4vy/transactions", params=params, timeout=10,
                        headers={"authorization": "Bearer " + auth.get_token(pem)})


@pytest.fixture
def customers(sdk):
    """Ada (a stored buyer in London), a guest buyer given inline, and a payment with no buyer."""
    ada = sdk.buyers.create(display_name="Ada Lovelace", external_identifier="ada", billing_details={
        "first_name": "Ada", "last_name": "Lovelace", "email_address": "ada@example.com",
        "address": {"city": "London", "country": "GB", "postal_code": "N1 9GU"}})
    grace = sdk.buyers.create(display_name="Grace Hopper", external_identifier="grace", billing_details={
        "first_name": "Grace", "email_address": "grace@example.com", "address": {"city": "Arlington"}})
    return {"ada": pay(sdk, buyer_id=ada.id), "grace": pay(sdk, buyer_id=grace.id),
            "guest": pay(sdk, buyer={"display_name": "Guest", "billing_details": {
                "email_address": "guest@example.com", "address": {"city": "London"}}}),
            "anonymous": pay(sdk)}


def test_buyer_email_address_matches_the_buyers_email_only(sdk, customers):
    assert ids(sdk, buyer_email_address="ada@example.com") == {customers["ada"].id}
    assert ids(sdk, buyer_email_address="guest@example.com") == {customers["guest"].id}
    assert ids(sdk, buyer_email_address="nobody@example.com") == set()
    assert ids(sdk, buyer_email_address="ada@example") == set()   # a match, not a part of one


def test_buyer_search_needs_every_value_to_be_one_of_the_buyers_data(sdk, customers):
    assert ids(sdk, buyer_search=["ada@example.com"]) == {customers["ada"].id}
    assert ids(sdk, buyer_search=["London"]) == {customers["ada"].id, customers["guest"].id}
    assert ids(sdk, buyer_search=["Ada", "London"]) == {customers["ada"].id}
    assert ids(sdk, buyer_search=["grace"]) == {customers["grace"].id}   # the external identifier
    assert ids(sdk, buyer_search=["Ada", "Arlington"]) == set()         # Ada is not in Arlington
    assert ids(sdk, buyer_search=["nobody-matches"]) == set()
    assert ids(sdk, buyer_search=["Lond"]) == set()                      # whole values only
    assert ids(sdk, buyer_search=["london"]) == set()                    # exactly


def test_search_is_an_exact_match_on_its_five_fields(sdk, customers):
    ada = sdk.transactions.get(transaction_id=customers["ada"].id)
    other = pay(sdk, external_identifier="order-1234")
    assert ids(sdk, search="order-1234") == {other.id}
    assert ids(sdk, search="order-12") == set()          # not a part of one
    assert ids(sdk, search="ORDER-1234") == set()
    assert ids(sdk, search=ada.id) == {ada.id}
    assert ids(sdk, search=ada.buyer.id) == {ada.id}
    assert ids(sdk, search="ada") == {ada.id}            # the buyer's external identifier
    assert ids(sdk, search=ada.payment_service_transaction_id) == {ada.id}


def test_ip_address_is_the_callers_address(sdk):
    direct = pay(sdk)
    assert ids(sdk, ip_address="127.0.0.1") == {direct.id}
    assert ids(sdk, ip_address="0:0:0:0:0:ffff:7f00:1") == set()   # another address, however spelt
    assert ids(sdk, ip_address="198.51.100.7") == set()
    assert ids(sdk, ip_address="not-an-ip") == set()


@pytest.fixture(params=["in-process", "run.py"])
def served(request, server):
    """The sandbox as tests serve it, and as ``python run.py`` does: both pass proxy headers on."""
    if request.param == "in-process":
        yield server
        return
    proc = ServerProcess().wait_ready()
    yield proc
    proc.stop()


def test_ip_address_is_the_forwarded_buyer_address_when_the_header_arrives(served, pem):
    """The SDK's ``x_forwarded_for`` (for calls made server-side)."""
    sdk = client(served, pem)
    forwarded = pay(sdk, x_forwarded_for="203.0.113.9, 10.0.0.1")
    ipv6 = pay(sdk, x_forwarded_for="2001:DB8:0:0::1")
    junk = pay(sdk, x_forwarded_for="unknown")   # no address: the caller's is taken
    assert ids(sdk, ip_address="203.0.113.9") == {forwarded.id}
    assert ids(sdk, ip_address="2001:db8::1") == {ipv6.id}
    assert ids(sdk, ip_address="127.0.0.1") == {junk.id}
    assert ids(sdk, ip_address="10.0.0.1") == set()   # a proxy on the way, not the buyer


def test_payment_service_transaction_id(sdk):
    approved = pay(sdk)
    declined = pay(sdk, amount=200011)
    assert approved.payment_service_transaction_id and declined.payment_service_transaction_id is None
    assert ids(sdk, payment_service_transaction_id=approved.payment_service_transaction_id) == {approved.id}
    assert ids(sdk, payment_service_transaction_id="nope") == set()


def test_payment_service_id(server, pem, sdk):
    one, two = pay(sdk), pay(sdk, amount=200011)
    service = one.payment_service.id
    assert ids(sdk, payment_service_id=[service]) == {one.id, two.id}
    assert ids(sdk, payment_service_id=[ABSENT, service]) == {one.id, two.id}
    assert ids(sdk, payment_service_id=[ABSENT]) == set()
    assert raw_list(server, pem, {"payment_service_id": "card-simulator"}).status_code == 400


def test_payment_method_country_matches_the_payment_methods_country(sdk):
    tx = pay(sdk)
    # the card simulator's payment methods carry no country: no value finds them
    assert tx.payment_method.country is None
    assert ids(sdk, payment_method_country="US") == set()
    assert ids(sdk, payment_method_country="ZZ") == set()
    assert ids(sdk) == {tx.id}


def test_used_3ds_is_set_by_the_buyer_approval_challenge(sdk, server):
    with open(os.path.join(ROOT, "scenarios", "gr4vy-cit-3ds-challenge.yaml"), "rb") as doc:
        requests.put(f"{server.url}/_sandbox/scenarios", data=doc, timeout=10,
                     headers={"content-type": "application/yaml"}).raise_for_status()
    challenged = pay(sdk, payment_method={**CARD, "redirect_url": "https://merchant.example/return"})
    no_redirect = pay(sdk)   # 3DS wanted, nowhere to send the buyer: fails before any challenge
    mit = pay(sdk, merchant_initiated=True)
    assert challenged.status == "buyer_approval_pending" and no_redirect.error_code == "missing_redirect_url"
    assert ids(sdk, used_3ds=True) == {challenged.id}
    assert ids(sdk, used_3ds=False) == {no_redirect.id, mit.id}
    server.hosted("gr4vy", challenged.id, outcome="cancel")   # attempted, whatever the outcome
    assert ids(sdk, used_3ds=True) == {challenged.id}


def test_has_refunds_counts_completed_refunds_only(sdk):
    refunded = pay(sdk, intent="capture")
    sdk.transactions.refunds.create(transaction_id=refunded.id, amount=100)
    failed = pay(sdk, amount=520003, intent="capture")   # its refunds fail (service_error)
    assert sdk.transactions.refunds.create(transaction_id=failed.id).status == "failed"
    untouched = pay(sdk)
    assert ids(sdk, has_refunds=True) == {refunded.id}
    assert ids(sdk, has_refunds=False) == {failed.id, untouched.id}


@pytest.mark.parametrize("name", ["has_settlements", "has_gift_card_redemptions"])
def test_flags_of_what_the_sandbox_never_has(sdk, name):
    """No settlement records, no gift cards: ``true`` finds nothing, ``false`` everything."""
    txs = {pay(sdk).id, pay(sdk, amount=200011).id}
    assert ids(sdk, **{name: True}) == set()
    assert ids(sdk, **{name: False}) == txs


@pytest.mark.parametrize("name, value", [
    ("checkout_session_id", ABSENT), ("payment_link_id", ABSENT), ("gift_card_id", ABSENT),
    ("reauthorized_from_transaction_id", ABSENT), ("gift_card_last4", "7890")])
def test_ids_of_what_the_sandbox_never_has_find_nothing(server, pem, sdk, name, value):
    tx = pay(sdk)
    assert ids(sdk, status=["authorization_succeeded"]) == {tx.id}
    assert ids(sdk, status=["authorization_succeeded"], **{name: value}) == set()
    malformed = raw_list(server, pem, {name: "123" if name == "gift_card_last4" else "not-a-uuid"})
    assert malformed.status_code == 400
    assert malformed.json()["details"][0] == {"location": "query", "pointer": f"/{name}",
                                              "message": malformed.json()["details"][0]["message"],
                                              "type": "value_error"}


@pytest.mark.parametrize("name", ["id", "buyer_id", "payment_method_id"])
def test_uuid_filters_read_any_spelling_of_the_id_and_refuse_what_is_no_uuid(server, pem, sdk, name):
    buyer = sdk.buyers.create(display_name="Uma")
    tx = pay(sdk, buyer_id=buyer.id, store=True)
    pay(sdk)
    value = {"id": tx.id, "buyer_id": buyer.id, "payment_method_id": tx.payment_method.id}[name]
    assert ids(sdk, **{name: value}) == {tx.id}
    assert ids(sdk, **{name: value.upper()}) == {tx.id}
    assert ids(sdk, **{name: ABSENT}) == set()
    resp = raw_list(server, pem, {name: "nope"})
    assert resp.status_code == 400 and resp.json()["details"][0]["pointer"] == f"/{name}"


@pytest.mark.parametrize("name", ["used_3ds", "has_settlements", "has_gift_card_redemptions"])
def test_malformed_booleans_are_400(server, pem, name):
    assert raw_list(server, pem, {name: "false"}).status_code == 200
    resp = raw_list(server, pem, {name: "maybe"})
    assert resp.status_code == 400
    assert resp.json()["details"][0]["location"] == "query" and resp.json()["details"][0]["pointer"] == f"/{name}"


def test_every_filter_the_sdk_sends_is_in_the_published_document(server):
    doc = requests.get(f"{server.url}/gr4vy/openapi.json", timeout=10).json()
    published = {p["name"] for p in doc["paths"]["/transactions"]["get"]["parameters"] if p["in"] == "query"}
    sent = {f.alias or name for name, f in models.ListTransactionsRequest.model_fields.items()
            if name != "merchant_account_id"}
    assert sent - published == set()
    repeatable = {p["name"] for p in doc["paths"]["/transactions"]["get"]["parameters"]
                  if p["schema"].get("type") == "array"}
    assert {"buyer_search", "payment_service_id", "status", "metadata"} <= repeatable


# -- request fields kept on the transaction ---------------------------------------------------
DESCRIPTOR = {"name": "ACME Gold", "description": "Gold plan", "city": "San Jose", "country": "US",
              "phone_number": "+14155552671", "url": "www.example.com", "postal_code": "94560"}
ITEMS = [{"name": "Gold plan", "quantity": 1, "unit_amount": 2000, "sku": "GOLD-1", "product_type": "digital",
          "categories": ["plans"], "seller_country": "US", "tax_exempt": False},
         {"name": "Setup", "quantity": 2, "unit_amount": 300, "discount_amount": 100, "tax_amount": 0}]


def test_statement_descriptor_and_cart_items_round_trip_through_the_sdk_models(sdk):
    tx = pay(sdk, amount=2500, statement_descriptor=DESCRIPTOR, cart_items=ITEMS)
    expected_descriptor = models.StatementDescriptor(**DESCRIPTOR)
    for seen in (tx, sdk.transactions.get(transaction_id=tx.id), sdk.transactions.capture(transaction_id=tx.id)):
        assert isinstance(seen, models.Transaction)
        assert seen.statement_descriptor == expected_descriptor
        assert [{k: getattr(i, k) for k in sent} for i, sent in zip(seen.cart_items, ITEMS)] == ITEMS
        assert all(i.brand is None and i.duty_amount is None for i in seen.cart_items)   # not sent: null
        # Gr4vy's defaults for what was not sent: no discount, no tax
        assert [(i.discount_amount, i.tax_amount) for i in seen.cart_items] == [(0, 0), (100, 0)]
    plain = sdk.transactions.get(transaction_id=pay(sdk).id)
    assert plain.statement_descriptor is None and plain.cart_items is None


def test_partial_statement_descriptor_is_returned_with_the_rest_null(server, pem, sdk):
    tx = pay(sdk, statement_descriptor={"name": "ACME Inc"})
    assert tx.statement_descriptor.name == "ACME Inc" and tx.statement_descriptor.city is None
    body = requests.get(f"{server.url}/gr4vy/transactions/{tx.id}", timeout=10,
                        headers={"authorization": "Bearer " + auth.get_token(pem)}).json()
    assert body["statement_descriptor"] == {"name": "ACME Inc", "description": None, "city": None, "country": None,
                                            "phone_number": None, "url": None, "postal_code": None}


@pytest.mark.parametrize("extra, pointer", [
    ({"statement_descriptor": {"name": "ACME"}}, "/statement_descriptor/name"),              # 5 to 22
    ({"statement_descriptor": {"description": "x" * 23}}, "/statement_descriptor/description"),
    ({"statement_descriptor": {"phone_number": "4155552671"}}, "/statement_descriptor/phone_number"),
    ({"statement_descriptor": {"country": "usa"}}, "/statement_descriptor/country"),
    ({"cart_items": [{"name": "x", "quantity": 0, "unit_amount": 1}]}, "/cart_items/0/quantity"),
    ({"cart_items": [{"name": "x", "quantity": 1, "unit_amount": -1}]}, "/cart_items/0/unit_amount"),
])
def test_statement_descriptor_and_cart_items_are_validated_as_gr4vy_does(sdk, extra, pointer):
    with pytest.raises(errors.Error400) as exc:
        pay(sdk, **extra)
    assert [d.pointer for d in exc.value.data.details] == [pointer]
    assert ids(sdk) == set()   # nothing was made


@pytest.mark.parametrize("body, pointer", [
    ({"statement_descriptor": {"name": "ACME Inc", "logo": "x"}}, "/statement_descriptor/logo"),
    ({"cart_items": [{"name": "x", "quantity": 1, "unit_amount": 1, "colour": "red"}]}, "/cart_items/0/colour"),
    ({"cart_items": [{"name": "x", "quantity": 1.5, "unit_amount": 1}]}, "/cart_items/0/quantity"),
    ({"cart_items": {"name": "x"}}, "/cart_items"),
    ({"cart_items": [{"quantity": 1, "unit_amount": 1}]}, "/cart_items/0/name"),
    # the SDK drops a product_type it does not know before sending
    ({"cart_items": [{"name": "x", "quantity": 1, "unit_amount": 1, "product_type": "car"}]},
     "/cart_items/0/product_type"),
])
def test_what_the_sdk_cannot_send_is_refused_too(server, pem, body, pointer):
    resp = requests.post(f"{server.url}/gr4vy/transactions", timeout=10,
                         headers={"authorization": "Bearer " + auth.get_token(pem)},
                         json={"amount": 100, "currency": "USD", "payment_method": CARD, **body})
    assert resp.status_code == 400
    assert [d["pointer"] for d in resp.json()["details"]] == [pointer]
