"""Response bodies against the shapes of Gr4vy's published API document.

The reference is the official ``gr4vy`` SDK's models, which are generated from that document: every
key we send must be a field of the model (under its wire name) and every required field must be
there, nested objects included. The SDK itself ignores unknown keys, so the bodies are read raw.
"""
import uuid

import pytest
import requests
from gr4vy import auth, models

from gr4vy_helpers import CARD, client, new_key


def wire_fields(model) -> tuple[set, set]:
    fields = model.model_fields
    return ({f.alias or n for n, f in fields.items()},
            {f.alias or n for n, f in fields.items() if f.is_required()})


def assert_shape(body: dict, model, nested: dict | None = None, where: str = "") -> None:
    allowed, required = wire_fields(model)
    assert set(body) <= allowed, f"{where or model.__name__}: keys not in the spec: {sorted(set(body) - allowed)}"
    assert required <= set(body), f"{where or model.__name__}: missing required {sorted(required - set(body))}"
    for key, sub in (nested or {}).items():
        if body.get(key) is not None:
            assert_shape(body[key], sub, where=f"{where or model.__name__}.{key}")


TX_NESTED = {"payment_service": models.TransactionPaymentService, "payment_method": models.TransactionPaymentMethod,
             "buyer": models.TransactionBuyer}


@pytest.fixture
def raw(server, pem):
    def get(path, **params):
        resp = requests.get(f"{server.url}/gr4vy{path}", params=params, timeout=10,
                            headers={"authorization": "Bearer " + auth.get_token(pem),
                                     "x-gr4vy-merchant-account-id": "default"})
        assert resp.status_code == 200, resp.text
        return resp.json()
    return get


def test_payment_service_id_is_a_uuid_stable_per_tenant(server, sdk, raw):
    first = sdk.transactions.create(amount=1000, currency="GBP", country="GB", payment_method=CARD)
    second = sdk.transactions.create(amount=2000, currency="GBP", country="GB", payment_method=CARD)
    service = raw(f"/transactions/{first.id}")["payment_service"]
    assert uuid.UUID(service["id"]).version == 4
    assert second.payment_service.id == service["id"]
    assert_shape(service, models.TransactionPaymentService)
    other = client(server, new_key()[0]).transactions.create(amount=1000, currency="GBP", country="GB",
                                                             payment_method=CARD)
    assert other.payment_service.id != service["id"]


def test_transaction_list_items_are_transaction_summaries(sdk, raw):
    buyer = sdk.buyers.create(display_name="Jane", external_identifier="jane-1")
    sdk.transactions.create(amount=1000, currency="GBP", country="GB", payment_method=CARD, buyer_id=buyer.id,
                            store=True, metadata={"plan": "gold"})
    items = raw("/transactions")["items"]
    assert len(items) == 1
    assert_shape(items[0], models.TransactionSummary, TX_NESTED)
    assert "intent_outcome" not in items[0] and "metadata" not in items[0]
    full = raw(f"/transactions/{items[0]['id']}")
    assert_shape(full, models.Transaction, TX_NESTED)


def test_refunds_match_the_refund_schema(sdk, raw):
    tx = sdk.transactions.create(amount=1000, currency="GBP", country="GB", payment_method=CARD, intent="capture")
    refund = sdk.transactions.refunds.create(transaction_id=tx.id, amount=400)
    body = raw(f"/transactions/{tx.id}/refunds/{refund.id}")
    assert_shape(body, models.Refund)
    assert "merchant_account_id" not in body
    listed = raw(f"/transactions/{tx.id}/refunds")["items"]
    assert [r["id"] for r in listed] == [refund.id]
    assert_shape(listed[0], models.Refund)


def test_buyer_payment_method_items_are_payment_method_summaries(sdk, raw):
    buyer = sdk.buyers.create(display_name="John")
    sdk.payment_methods.create(request_body={**{k: CARD[k] for k in ("method", "number", "expiration_date")},
                                             "buyer_id": buyer.id, "external_identifier": "card-9"})
    items = raw("/buyers/payment-methods", buyer_id=buyer.id)["items"]
    assert len(items) == 1
    assert_shape(items[0], models.PaymentMethodSummary, {"details": models.PaymentMethodDetailsCard})
    assert "external_identifier" not in items[0]
    full = raw(f"/payment-methods/{items[0]['id']}")
    assert full["external_identifier"] == "card-9"   # the full payment method keeps it
