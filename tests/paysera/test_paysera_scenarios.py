"""Shipped Paysera scenarios, loaded from scenarios/ the way `python run.py --scenario` loads them."""
from __future__ import annotations

import os

import pytest

from simulator.testing import SandboxServer, WebhookReceiver
from paysera_helpers import PayseraClient, hosted_token, recurring_payment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def library(name):
    return os.path.join(ROOT, "scenarios", name)


@pytest.fixture
def receiver():
    rcv = WebhookReceiver().start()
    yield rcv
    rcv.stop()


def start(name):
    return SandboxServer({"webhooks": "manual"}, scenario_files=[library(name)]).start()


def test_renewal_insufficient_funds_scenario(receiver):
    srv = start("paysera-renewal-insufficient-funds.yaml")
    try:
        client = PayseraClient(srv.url)
        _, token = hosted_token(srv, client, receiver)
        first = client.create(**recurring_payment(receiver.url + "/cb", order_id="m2")).json()
        assert client.authorize(first["id"], token).json()["status"] == "captured"
        second = client.create(**recurring_payment(receiver.url + "/cb", order_id="m3")).json()
        declined = client.authorize(second["id"], token)
        assert declined.status_code == 409
        assert declined.json()["error"] == "invalid_state"
        assert declined.json()["error_data"]["reason"] == "insufficient_funds"
        assert client.get(second["id"]).json()["status"] == "new"
        retried = client.authorize(second["id"], token)
        assert retried.status_code == 200 and retried.json()["status"] == "captured"
        journal = [e for e in srv.journal(provider="paysera") if e["path"].endswith("/authorize")]
        assert [e["rules"] for e in journal] == [[], ["second-token-charge-declined"], []]
    finally:
        srv.stop()


def test_token_revoked_scenario(receiver):
    srv = start("paysera-token-revoked.yaml")
    try:
        client = PayseraClient(srv.url)
        _, token = hosted_token(srv, client, receiver)
        for expected in (200, 400, 400):
            pr = client.create(**recurring_payment(receiver.url + "/cb")).json()
            resp = client.authorize(pr["id"], token)
            assert resp.status_code == expected, resp.text
            if expected == 400:
                assert resp.json()["error_properties"] == {"token": ["Token is revoked"]}
        # a fresh first payment gives a token that works again
        _, fresh = hosted_token(srv, client, receiver)
        pr = client.create(**recurring_payment(receiver.url + "/cb")).json()
        assert client.authorize(pr["id"], fresh).json()["status"] == "captured"
    finally:
        srv.stop()


def test_engine_rejects_a_decline_code_paysera_does_not_have(server):
    doc = ("name: bad\nrules:\n  - name: r\n    provider: paysera\n    effect:\n      decline: \"20051\"\n")
    resp = server.admin("PUT", "/scenarios", data=doc, headers={"Content-Type": "application/yaml"})
    assert resp.status_code == 400 and "20051" in resp.text
    ok = doc.replace('"20051"', "do_not_honor")
    assert server.admin("PUT", "/scenarios", data=ok, headers={"Content-Type": "application/yaml"}).status_code == 200
