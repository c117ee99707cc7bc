"""Tokens: reusable until revoked or the card expires on the virtual clock; magic declines; scenario hooks."""
from __future__ import annotations

import pytest

from simulator.core.effects import Effects
from simulator.core.scenarios import Decision
from simulator.providers.paysera import testcards
from paysera_helpers import client, first_payment, hosted_token, recurring_payment  # noqa: F401


def charge(server, client, receiver, token, amount=999):
    pr = client.create(**recurring_payment(receiver.url + "/cb", amount=amount)).json()
    return pr, client.authorize(pr["id"], token)


def test_token_is_reusable(server, client, receiver):
    _, token = hosted_token(server, client, receiver)
    for month in range(3):
        _, resp = charge(server, client, receiver, token)
        assert resp.json()["status"] == "captured"


def test_unknown_token_is_invalid_parameters(server, client, receiver):
    pr, resp = charge(server, client, receiver, "vLUGdTtnDjQs7Yv0fjYQyYfG60m")
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] == "invalid_parameters" and body["error_properties"] == {"token": ["Token is invalid"]}
    assert client.get(pr["id"]).json()["status"] == "new"


def test_token_expires_with_the_card_on_the_virtual_clock(server, client, receiver):
    pr = client.create(**first_payment(receiver.url + "/cb")).json()
    paid = server.hosted("paysera", pr["id"], outcome="approve",
                         card={"number": "4111111111111111", "exp_month": 2, "exp_year": 2026, "cvv": "123"}).json()
    token = paid["payment_request"]["issued_token"]
    assert charge(server, client, receiver, token)[1].status_code == 200
    server.advance("P58D")                      # 2026-02-28: the card is still valid
    assert charge(server, client, receiver, token)[1].status_code == 200
    server.advance("P1D")                       # 2026-03-01: expired
    pr, resp = charge(server, client, receiver, token)
    assert resp.status_code == 400 and resp.json()["error_properties"] == {"token": ["Token has expired"]}
    assert client.get(pr["id"]).json()["status"] == "new"


@pytest.mark.parametrize("number,reason", sorted(testcards.DECLINE_CARDS.items()))
def test_decline_cards_on_the_hosted_page(server, client, receiver, number, reason):
    pr = client.create(**first_payment(receiver.url + "/cb")).json()
    result = server.hosted("paysera", pr["id"], outcome="approve", card={"number": number}).json()
    assert result["result"] == "declined" and result["reason"] == reason


def test_token_from_a_renewal_decline_card_is_declined_later(server, client, receiver):
    pr = client.create(**first_payment(receiver.url + "/cb")).json()
    token = server.hosted("paysera", pr["id"], outcome="approve",
                          card={"number": "4000000000000341"}).json()["payment_request"]["issued_token"]
    server.flush()
    before = len(receiver.requests)
    pr, resp = charge(server, client, receiver, token)
    assert resp.status_code == 409
    body = resp.json()
    assert body["error"] == "invalid_state" and body["error_description"] == "Payment was declined"
    assert body["error_data"]["reason"] == "insufficient_funds"
    assert client.get(pr["id"]).json()["status"] == "new"
    server.flush()
    assert len(receiver.requests) == before        # no notification for a decline


@pytest.mark.parametrize("amount,reason", [("10.51", "insufficient_funds"), (1005, "do_not_honor"),
                                           ("7.54", "card_expired"), ("3.59", "suspected_fraud"),
                                           ("100.61", "limit_exceeded")])
def test_magic_amounts_decline_token_charges(server, client, receiver, amount, reason):
    _, token = hosted_token(server, client, receiver)
    pr, resp = charge(server, client, receiver, token, amount=amount)
    assert resp.status_code == 409 and resp.json()["error_data"]["reason"] == reason
    # the request stays new: the merchant may retry it with another token later
    assert client.get(pr["id"]).json()["status"] == "new"


def test_magic_amount_declines_on_the_hosted_page(server, client, receiver):
    pr = client.create(**first_payment(receiver.url + "/cb", price={"amount": "10.51", "currency": "EUR"})).json()
    result = server.hosted("paysera", pr["id"], outcome="approve").json()
    assert result["reason"] == "insufficient_funds"


def test_decline_codes_known_to_scenarios(server):
    p = server.sandbox.providers["paysera"]
    assert all(p.decline_code_valid(code) for code in testcards.DECLINE_REASONS)
    assert not p.decline_code_valid("20051")


class Rule:
    """Stands in for the scenario engine: fires an effect on the next matching request."""

    def __init__(self, path_part, effects):
        self.path_part, self.effects, self.fired = path_part, effects, 0

    def __call__(self, provider, tenant, request):
        if provider.name == "paysera" and self.path_part in request.path and not self.fired:
            self.fired += 1
            return Decision(effects=self.effects())
        return None


def test_scenario_decline_effect(server, client, receiver, monkeypatch):
    _, token = hosted_token(server, client, receiver)
    monkeypatch.setattr(server.sandbox.scenarios, "match",
                        Rule("/authorize", lambda: Effects(decline="insufficient_funds", rules=["r"])))
    pr, resp = charge(server, client, receiver, token)
    assert resp.status_code == 409 and resp.json()["error_data"]["reason"] == "insufficient_funds"
    assert client.authorize(pr["id"], token).json()["status"] == "captured"   # only the first


def test_scenario_decline_effect_on_the_hosted_page(server, client, receiver, monkeypatch):
    import requests
    pr = client.create(**first_payment(receiver.url + "/cb")).json()
    monkeypatch.setattr(server.sandbox.scenarios, "match",
                        Rule("/checkout/pay/", lambda: Effects(decline="stolen_card")))
    page = requests.post(pr["authorization_url"], data={"action": "pay", "card_number": "4111111111111111",
                                                        "exp_month": "12", "exp_year": "2030", "cvv": "123"},
                         allow_redirects=False)
    assert page.status_code == 200 and "stolen_card" in page.text
    assert client.get(pr["id"]).json()["status"] == "new"


@pytest.mark.parametrize("effect,message", [("inactive", "Token is revoked"), ("expired", "Token has expired")])
def test_scenario_token_effect_stops_the_token_for_good(server, client, receiver, monkeypatch, effect, message):
    _, token = hosted_token(server, client, receiver)
    monkeypatch.setattr(server.sandbox.scenarios, "match", Rule("/authorize", lambda: Effects(token=effect)))
    pr, resp = charge(server, client, receiver, token)
    assert resp.status_code == 400 and resp.json()["error_properties"] == {"token": [message]}
    _, again = charge(server, client, receiver, token)      # no rule fires now
    assert again.status_code == 400 and again.json()["error_properties"] == {"token": [message]}
