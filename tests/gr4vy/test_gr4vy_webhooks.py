"""Webhooks: signed with X-Gr4vy-Webhook-Signatures over "{timestamp}.{body}", retried with
exponential back-off on the virtual clock until the receiver answers 2xx."""
import json
from datetime import datetime

import pytest
from gr4vy.webhooks import verify_webhook
from gr4vy_helpers import CARD, client, new_key

SECRET = "whsec-test-secret"


def configure(server, url, secret=SECRET):
    section = {"webhook_url": url}
    if secret:
        section["webhook_secret"] = secret
    resp = server.admin("PUT", "/config", json={"providers": {"gr4vy": section}})
    assert resp.status_code == 200, resp.text


def verify(request, secret=SECRET):
    headers = {k.lower(): v for k, v in request["headers"].items()}
    verify_webhook(request["body"].decode(), secret, headers.get("x-gr4vy-webhook-signatures"),
                   headers.get("x-gr4vy-webhook-timestamp"), 0)
    return headers


@pytest.fixture
def sdk(server):
    return client(server, new_key()[0])


def test_event_is_signed_and_verifies_with_the_sdk_helper(server, receiver, sdk):
    configure(server, receiver.url)
    tx = sdk.transactions.create(amount=1000, currency="USD", payment_method=CARD)
    server.flush()
    [request] = receiver.wait_for(1)
    headers = verify(request)
    assert headers["x-gr4vy-webhook-id"]
    assert int(headers["x-gr4vy-webhook-timestamp"]) == int(datetime.fromisoformat("2026-01-01T00:00:00+00:00").timestamp())
    with pytest.raises(ValueError):
        verify(request, secret="another-secret")
    event = json.loads(request["body"])
    assert event["type"] == "event" and event["name"] == "transaction.authorized"
    assert event["merchant_account_id"] == "default" and event["environment"] == "sandbox"
    assert event["id"] == headers["x-gr4vy-webhook-id"]
    assert event["target"]["type"] == "transaction" and event["target"]["id"] == tx.id
    assert event["target"]["status"] == "authorization_succeeded"
    assert "4111111111111111" not in request["body"].decode()


def test_retries_until_answered_2xx_as_the_clock_advances(server, receiver, sdk):
    configure(server, receiver.url)
    receiver.status = 500
    tx = sdk.transactions.create(amount=1000, currency="USD", payment_method=CARD)
    server.flush()
    [delivery] = server.webhooks(provider="gr4vy")
    assert delivery["status"] == "failed" and len(delivery["attempts"]) == 1
    assert delivery["attempts"][0]["status"] == 500
    assert delivery["next_attempt_at"] == "2026-01-01T00:01:00.000Z"
    server.advance("PT1M")
    [delivery] = server.webhooks(provider="gr4vy")
    assert len(delivery["attempts"]) == 2 and delivery["next_attempt_at"] == "2026-01-01T00:03:00.000Z"
    receiver.status = 200
    server.advance("PT2M")
    [delivery] = server.webhooks(provider="gr4vy")
    assert delivery["status"] == "delivered" and delivery["next_attempt_at"] is None
    assert [a["status"] for a in delivery["attempts"]] == [500, 500, 200]
    assert [a["at"] for a in delivery["attempts"]] == ["2026-01-01T00:00:00.000Z", "2026-01-01T00:01:00.000Z",
                                                       "2026-01-01T00:03:00.000Z"]
    requests_seen = receiver.wait_for(3)
    ids = {verify(r)["x-gr4vy-webhook-id"] for r in requests_seen}
    assert len(ids) == 1   # stable across retries, for de-duplication
    stamps = [int(verify(r)["x-gr4vy-webhook-timestamp"]) for r in requests_seen]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3   # signed afresh at each attempt
    assert json.loads(requests_seen[-1]["body"])["target"]["id"] == tx.id
    server.advance("P10D")
    assert len(server.webhooks(provider="gr4vy")[0]["attempts"]) == 3   # no more after success


def test_gives_up_after_seven_days(server, receiver, sdk):
    configure(server, receiver.url)
    receiver.status = 503
    sdk.transactions.create(amount=1000, currency="USD", payment_method=CARD)
    server.flush()
    server.advance("P6D")
    assert server.webhooks(provider="gr4vy")[0]["status"] == "failed"
    server.advance("P2D")
    [delivery] = server.webhooks(provider="gr4vy")
    assert delivery["status"] == "dead" and delivery["next_attempt_at"] is None
    first = datetime.fromisoformat(delivery["attempts"][0]["at"].replace("Z", "+00:00"))
    last = datetime.fromisoformat(delivery["attempts"][-1]["at"].replace("Z", "+00:00"))
    assert (last - first).days <= 7


def test_event_names_follow_the_lifecycle(server, receiver, sdk):
    configure(server, receiver.url)
    tx = sdk.transactions.create(amount=1000, currency="USD", payment_method=CARD)
    sdk.transactions.capture(transaction_id=tx.id)
    sdk.transactions.refunds.create(transaction_id=tx.id, amount=100)
    other = sdk.transactions.create(amount=1000, currency="USD", payment_method=CARD)
    sdk.transactions.void(transaction_id=other.id)
    sdk.transactions.create(amount=200011, currency="USD", payment_method=CARD)
    sdk.transactions.create(amount=300013, currency="USD", payment_method=CARD)
    buyer = sdk.buyers.create(display_name="Ada")
    pm = sdk.payment_methods.create(request_body={**CARD, "buyer_id": buyer.id})
    sdk.payment_methods.delete(payment_method_id=pm.id)
    server.flush()
    names = [json.loads(r["body"])["name"] for r in receiver.wait_for(9)]
    # Gr4vy does not promise delivery order, so compare as a multiset
    assert sorted(names) == sorted(["transaction.authorized", "transaction.captured", "refund.succeeded",
                                    "transaction.authorized", "transaction.voided", "transaction.declined",
                                    "transaction.failed", "buyer.created", "payment-method.deleted"])


def test_payment_method_deleted_event_shows_the_current_buyer(server, receiver, sdk):
    buyer = sdk.buyers.create(display_name="Ada", external_identifier="ada-1")
    pm = sdk.payment_methods.create(request_body={**CARD, "buyer_id": buyer.id})
    sdk.buyers.update(buyer_id=buyer.id, display_name="Countess", external_identifier="ada-2")
    configure(server, receiver.url)
    sdk.payment_methods.delete(payment_method_id=pm.id)
    server.flush()
    [request] = receiver.wait_for(1)
    verify(request)
    event = json.loads(request["body"])
    assert event["name"] == "payment-method.deleted" and event["target"]["id"] == pm.id
    assert event["target"]["buyer"]["display_name"] == "Countess"
    assert event["target"]["buyer"]["external_identifier"] == "ada-2"
    assert not [k for k in event["target"] if k.startswith("_")]


def test_default_secret_when_none_is_configured(server, receiver, sdk):
    configure(server, receiver.url, secret=None)
    sdk.transactions.create(amount=1000, currency="USD", payment_method=CARD)
    server.flush()
    [request] = receiver.wait_for(1)
    verify(request, secret="gr4vy-sandbox-webhook-secret")
