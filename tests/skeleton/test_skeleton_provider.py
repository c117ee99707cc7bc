"""A provider that is not in the registry, mounted from outside it, runs one payment through every
piece of shared machinery: auth, validation, scenarios, journal, webhooks and the clock; and its
contract gives it the OpenAPI document every registered provider serves, which its answers and
webhooks keep to."""
from __future__ import annotations

import hashlib
import hmac
import json
import warnings

import pytest
import requests
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from contracts.contract_check import ContractChecker, schema_validator
from simulator import MAX_BODY
from simulator.providers import REGISTERED
from simulator.providers.openapi import document, routed
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


def api(srv, method, path, key=KEY, headers=None, **kw):
    headers = {**({"Authorization": f"Bearer {key}"} if key else {}), **(headers or {})}
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


def served_document(srv) -> dict:
    resp = requests.get(f"{srv.url}/skeleton/openapi.json", timeout=30)   # no credentials
    assert resp.status_code == 200, "no document: the skeleton's contract.py is missing or unused"
    assert resp.headers["Content-Type"].startswith("application/json")
    return resp.json()


def test_serves_a_valid_openapi_document_of_every_routed_operation(sandbox):
    doc = served_document(sandbox)
    assert doc["openapi"] == "3.1.0"
    validate(doc, cls=OpenAPIV31SpecValidator)   # as tests/contracts validates the registered ones
    assert doc["servers"][0]["url"] == f"{sandbox.url}/skeleton"
    scheme = doc["components"]["securitySchemes"]["ApiKey"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")   # what authenticate() reads
    provider = sandbox.sandbox.providers["skeleton"]
    routes = routed(sandbox.app, provider)
    documented = {(m, p) for p, item in doc["paths"].items() for m in item}
    assert documented == {(m, p) for _, m, p in routes} == {
        ("post", "/payments"), ("get", "/payments/{payment_id}"), ("post", "/pay/{payment_id}")}
    for endpoint, method, path in routes:
        op = doc["paths"][path][method]
        if endpoint == "pay_page_submit":   # the customer's browser: no credentials
            assert op["security"] == [] and "401" not in op["responses"]
        else:
            assert op["security"] == [{"ApiKey": []}] and "401" in op["responses"]
    assert sorted(doc["webhooks"]) == ["payment.authorized", "payment.declined", "payment.expired"]
    page = requests.get(f"{sandbox.url}/_sandbox/openapi/skeleton", timeout=30)
    assert page.status_code == 200 and 'id="op-pay_page_submit"' in page.text
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # two schemas resolving to one component name, say
        with sandbox.app.test_request_context():
            assert document(sandbox.app, provider, f"{sandbox.url}/skeleton") == doc


def test_every_answer_is_documented_and_every_documented_answer_is_given(sandbox):
    """Each status of each operation, driven for real and checked by the suite's own response
    checker: nothing answered that the document lacks, nothing documented that never comes."""
    doc = served_document(sandbox)
    checker = ContractChecker()
    checker.install(sandbox.app)

    def pay_now(pay_id, status):
        resp = api(sandbox, "POST", f"/pay/{pay_id}", key=None)
        assert resp.status_code == status, resp.text
        return resp.json()

    def create_plain(amount=1000):
        resp = api(sandbox, "POST", "/payments", json={"amount": amount, "currency": "EUR"})
        assert resp.status_code == 201, resp.text
        return resp.json()

    pay = create_plain()
    assert api(sandbox, "POST", "/payments", json={"amount": 0, "currency": "eur"}).status_code == 400
    assert api(sandbox, "POST", "/payments", data=b"[1]").status_code == 400
    assert api(sandbox, "POST", "/payments", key=None, json={"amount": 1, "currency": "EUR"}).status_code == 401
    too_large = b" " * (MAX_BODY + 1)
    assert api(sandbox, "POST", "/payments", data=too_large).status_code == 413
    assert api(sandbox, "GET", f"/payments/{pay['id']}").status_code == 200
    assert api(sandbox, "GET", f"/payments/{pay['id']}", key=None).status_code == 401
    assert api(sandbox, "GET", "/payments/pay_nothing").status_code == 404
    form = {"Content-Type": "application/x-www-form-urlencoded"}   # read before any view runs
    assert api(sandbox, "GET", f"/payments/{pay['id']}", data=too_large, headers=form).status_code == 413
    assert api(sandbox, "POST", f"/pay/{pay['id']}", key=None, data=too_large, headers=form).status_code == 413
    assert pay_now(pay["id"], 200)["status"] == "authorized"
    pay_now(pay["id"], 409)
    pay_now("pay_nothing", 404)
    declined = create_plain(amount=1051)
    assert pay_now(declined["id"], 402)["error"]["decline_code"] == "insufficient_funds"
    assert api(sandbox, "GET", f"/payments/{declined['id']}").json()["decline_code"] == "insufficient_funds"
    waiting = create_plain()
    sandbox.sandbox.outbox.max_pending = 0   # the outbox is full: every write is refused
    assert api(sandbox, "POST", "/payments", json={"amount": 1, "currency": "EUR"}).status_code == 503
    pay_now(waiting["id"], 503)

    assert checker.problems == [], "\n".join(checker.problems)
    documented = {f"skeleton {method.upper()} {path} {status}" for path, item in doc["paths"].items()
                  for method, op in item.items() for status in op["responses"]}
    assert set(checker.checked) == documented


def test_webhooks_are_the_documented_events_with_the_documented_payload(sandbox, receiver):
    doc = served_document(sandbox)
    authorized, declined, expiring = (create(sandbox, receiver, amount) for amount in (1000, 1051, 1000))
    assert api(sandbox, "POST", f"/pay/{authorized['id']}", key=None).status_code == 200
    assert api(sandbox, "POST", f"/pay/{declined['id']}", key=None).status_code == 402
    sandbox.advance("PT16M")
    sandbox.flush()
    sent = {}
    for delivery in receiver.requests:
        body = json.loads(delivery["body"])
        hook = doc["webhooks"][body["type"]]["post"]
        media = delivery["headers"]["Content-Type"].split(";")[0]
        schema = hook["requestBody"]["content"][media]["schema"]
        assert [e.message for e in schema_validator(doc, schema).iter_errors(body)] == []
        assert {p["name"] for p in hook["parameters"]} <= set(delivery["headers"])
        sent[body["data"]["id"]] = body["type"]
    assert sent == {authorized["id"]: "payment.authorized", declined["id"]: "payment.declined",
                    expiring["id"]: "payment.expired"}
