"""A provider that is not in the registry, mounted from outside it, runs one payment through every
piece of shared machinery: auth, validation, scenarios, journal, webhooks and the clock."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests

from simulator.providers import REGISTERED
from simulator.providers.shape import status_table
from simulator.testing import DEFAULT_START, SandboxServer
from skeleton_provider import WEBHOOK_SECRET, Skeleton

KEY = "sk_test_one"
DECLINE_FIRST = """
name: skeleton-first-pay-declined
rules:
  - name: first-pay-declined
    provider: skeleton
    path: /skeleton/pay/*
    nth: 1
    effect: {decline: do_not_honor}
"""


@pytest.fixture
def sandbox():
    srv = SandboxServer({"seed": 3, "clock": {"start": DEFAULT_START}, "webhooks": "manual"},
                        extra_providers=[Skeleton]).start()
    yield srv
    srv.stop()


def api(srv, method, path, key=KEY, **kw):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.request(method, f"{srv.url}/skeleton{path}", headers=headers, timeout=30, **kw)


def create(srv, receiver, amount=1000):
    resp = api(srv, "POST", "/payments", json={"amount": amount, "currency": "EUR", "webhook_url": receiver.url})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_mounted_from_outside_the_registry(sandbox):
    assert "skeleton" not in REGISTERED
    assert "skeleton" in sandbox.admin("GET", "/health").json()["providers"]


def test_auth_validation_and_unknown_ids_answer_in_the_providers_envelope(sandbox):
    assert api(sandbox, "POST", "/payments", key=None, json={}).json() == {
        "error": {"code": "unauthorized", "message": "Missing or unknown API key."}}
    bad = api(sandbox, "POST", "/payments", json={"amount": 0, "currency": "eur"})
    assert bad.status_code == 400
    assert {f["field"] for f in bad.json()["error"]["fields"]} == {"amount", "currency"}
    assert api(sandbox, "POST", "/payments", data=b"[1]").json()["error"]["code"] == "malformed_request"
    missing = api(sandbox, "GET", "/payments/pay_nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert api(sandbox, "GET", "/nowhere").json()["error"]["code"] == "not_found"


def test_scenario_decline_then_approval_with_journal_and_signed_webhooks(sandbox, receiver):
    bad_doc = DECLINE_FIRST.replace("do_not_honor", "stolen_moon")
    assert "not a skeleton decline code" in sandbox.admin("PUT", "/scenarios", data=bad_doc).json()["error"]
    assert sandbox.admin("PUT", "/scenarios", data=DECLINE_FIRST).status_code == 200

    first = create(sandbox, receiver)
    declined = api(sandbox, "POST", f"/pay/{first['id']}", key=None)   # the customer's browser
    assert declined.status_code == 402
    assert declined.json()["error"] == {"code": "declined", "message": "The payment was declined.",
                                        "decline_code": "do_not_honor"}
    second = create(sandbox, receiver)
    approved = sandbox.hosted("skeleton", second["id"], outcome="approve")
    assert approved.status_code == 200 and approved.json()["status"] == "authorized"
    again = sandbox.hosted("skeleton", second["id"], outcome="approve")
    assert again.status_code == 409
    assert again.json()["error"]["message"] == f"payment {second['id']} is authorized; cannot authorize"

    journal = sandbox.journal(provider="skeleton")
    assert [(e["path"], e["status"], e["rules"]) for e in journal] == [
        ("/skeleton/payments", 201, []), (f"/skeleton/pay/{first['id']}", 402, ["first-pay-declined"]),
        ("/skeleton/payments", 201, [])]   # the CI shortcut goes through /_sandbox, not the journal

    sandbox.flush()
    assert len(receiver.requests) == 2
    for delivery in receiver.requests:
        expected = hmac.new(WEBHOOK_SECRET, delivery["body"], hashlib.sha256).hexdigest()
        assert delivery["headers"]["Skeleton-Signature"] == expected
    events = [(b["type"], b["data"]["id"]) for b in map(json.loads, (d["body"] for d in receiver.requests))]
    # the timer pool's workers deliver two due events concurrently: their arrival order is not fixed
    assert sorted(events) == sorted([("payment.declined", first["id"]), ("payment.authorized", second["id"])])


def test_scenario_rule_on_the_providers_own_path_is_journaled(sandbox, receiver):
    doc = ("name: skeleton-down\nrules:\n  - name: creates-fail\n    provider: skeleton\n"
           "    path: /skeleton/payments\n    effect: {http_error: 503}\n")
    assert sandbox.admin("PUT", "/scenarios", data=doc).status_code == 200
    resp = api(sandbox, "POST", "/payments", json={"amount": 5, "currency": "EUR"})
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "unavailable"
    (entry,) = sandbox.journal(provider="skeleton")
    assert entry["rules"] == ["creates-fail"] and entry["status"] == 503


def test_the_clock_expires_a_pending_payment(sandbox, receiver):
    pay = create(sandbox, receiver)
    sandbox.advance("PT14M")
    assert api(sandbox, "GET", f"/payments/{pay['id']}").json()["status"] == "pending"
    sandbox.advance("PT2M")
    assert api(sandbox, "GET", f"/payments/{pay['id']}").json()["status"] == "expired"
    assert [json.loads(d["body"])["type"] for d in receiver.requests] == ["payment.expired"]


def test_the_transition_table_is_data_for_the_dashboard_and_docs():
    (table,) = Skeleton.state_tables()
    assert table.states == ["pending", "authorized", "declined", "expired"]
    assert "| `pending` | expire | `expired` |" in status_table(table)
