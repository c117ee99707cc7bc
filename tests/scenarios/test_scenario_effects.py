"""The effects that travel to the provider and the webhook outbox, through checkout-sdk."""
import hashlib
import hmac

import pytest
import yaml
from checkout_sdk.exception import CheckoutApiException

from scenario_helpers import MANUAL, card, cit, mit, sdk
from simulator.testing import SandboxServer, WebhookReceiver

SIGNING_KEY = "whsk-scenarios"


@pytest.fixture
def hooked():
    """A sandbox whose Checkout.com webhooks go to a loopback receiver."""
    receiver = WebhookReceiver().start()
    config = {**MANUAL, "providers": {"checkout": {"webhook_url": receiver.url + "/cko",
                                                   "webhook_signing_key": SIGNING_KEY}}}
    srv = SandboxServer(config).start()
    yield srv, receiver
    srv.stop()
    receiver.stop()


def load(srv, name, effect, **criteria):
    rule = {"name": name, "provider": "checkout", "method": "POST", "path": "/checkout/payments", "times": 1,
            "effect": effect, **criteria}
    resp = srv.admin("PUT", "/scenarios", data=yaml.safe_dump({"name": name, "rules": [rule]}))
    assert resp.status_code == 200, resp.text


def test_webhook_drop_never_sends(hooked):
    srv, receiver = hooked
    load(srv, "drop", {"webhook": {"drop": True}})
    dropped = cit(sdk(srv.url))
    srv.flush()
    srv.advance("P1D")
    mine = [d for d in srv.webhooks() if d["rules"] == ["drop"]]
    assert mine and all(d["status"] == "dead" and d["attempts"] == [] for d in mine)
    assert receiver.requests == []
    normal = cit(sdk(srv.url))                   # the next payment's events arrive
    srv.flush()
    receiver.wait_for(1)
    assert {b["data"]["id"] for b in receiver.json()} == {normal.id}
    assert dropped.id != normal.id


def test_webhook_duplicate_sends_extra_copies(hooked):
    srv, receiver = hooked
    load(srv, "dup", {"webhook": {"duplicate": 2}})
    paid = cit(sdk(srv.url))
    srv.flush()
    deliveries = srv.webhooks()
    types = {d["event_type"] for d in deliveries}
    assert len(deliveries) == 3 * len(types)
    receiver.wait_for(len(deliveries))
    bodies = receiver.json()
    for event_type in types:
        same = [b for b in bodies if b["type"] == event_type and b["data"]["id"] == paid.id]
        assert len(same) == 3 and len({b["id"] for b in same}) == 1   # the same event, three times


def test_webhook_delay_holds_the_first_attempt(hooked):
    srv, receiver = hooked
    load(srv, "late", {"webhook": {"delay": "PT10M"}})
    cit(sdk(srv.url))
    srv.flush()
    srv.advance("PT9M")
    assert receiver.requests == []
    srv.advance("PT1M")
    deliveries = srv.webhooks()
    receiver.wait_for(len(deliveries))
    assert all(d["attempts"][0]["at"].startswith("2026-01-01T00:10:00") for d in deliveries)


def test_webhook_bad_signature(hooked):
    srv, receiver = hooked
    load(srv, "forged", {"webhook": {"bad_signature": True}})
    cit(sdk(srv.url))
    srv.flush()
    receiver.wait_for(1)
    cit(sdk(srv.url), source=card("5436031030606378"))
    count = len(receiver.requests)
    srv.flush()
    after = receiver.wait_for(count + 1)

    def valid(r):
        expected = hmac.new(SIGNING_KEY.encode(), r["body"], hashlib.sha256).hexdigest()
        return r["headers"].get("Cko-Signature") == expected
    assert not any(valid(r) for r in after[:count])
    assert all(valid(r) for r in after[count:])


def test_token_inactive_makes_the_stored_card_stop_working():
    with SandboxServer(dict(MANUAL)) as srv:
        api = sdk(srv.url)
        first = cit(api)
        src = first.source.id
        load(srv, "inactive", {"token": "inactive"}, match={"source.id": src})
        with pytest.raises(CheckoutApiException) as caught:
            mit(api, src, first.id)
        assert caught.value.http_metadata.status_code == 422
        assert caught.value.error_details == ["source_id_invalid"]
        with pytest.raises(CheckoutApiException):          # for good: the rule fired once
            mit(api, src, first.id)
        assert cit(api, source=card("5436031030606378")).approved is True


def test_decline_and_require_3ds_on_a_mit():
    """A rule on an MIT: require_3ds is a plain 20154 decline there (MITs are never upgraded)."""
    with SandboxServer(dict(MANUAL)) as srv:
        api = sdk(srv.url)
        first = cit(api)
        load(srv, "mit-3ds", {"require_3ds": True}, match={"merchant_initiated": True})
        soft = mit(api, first.source.id, first.id)
        assert soft.http_metadata.status_code == 201 and soft.response_code == "20154"
        assert mit(api, first.source.id, first.id).approved is True


def test_the_first_rule_that_gives_an_effect_wins_even_when_it_gives_none_of_it():
    """README: for each effect the first rule that gives it wins. ``require_3ds: false`` and
    ``latency_ms: 0`` are given, and hold against a later rule's challenge and delay."""
    rules = [{"name": "calm", "provider": "checkout", "effect": {"require_3ds": False, "latency_ms": 0}},
             {"name": "strict", "provider": "checkout", "effect": {"require_3ds": True, "latency_ms": 1500}}]
    with SandboxServer(MANUAL) as srv:
        assert srv.admin("PUT", "/scenarios", data=yaml.safe_dump({"name": "two", "rules": rules})).status_code == 200
        paid = cit(sdk(srv.url))
        assert paid.http_metadata.status_code == 201 and paid.status == "Authorized"   # not 202, a challenge
        entry = next(e for e in reversed(srv.journal(provider="checkout")) if e["method"] == "POST")
        assert entry["rules"] == ["calm", "strict"]
