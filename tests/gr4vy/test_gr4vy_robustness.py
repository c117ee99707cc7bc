"""Seeded garbage on every Gr4vy endpoint never yields a 500; same seed, same requests, same bytes;
state survives a restart with --state."""
import json
import random

import requests
from gr4vy import auth
from gr4vy_helpers import CARD, client, new_key

from simulator.testing import SandboxServer

START = {"seed": 5, "clock": {"start": "2026-01-01T00:00:00Z"}, "webhooks": "manual"}


def garbage(rng, depth=0):
    kinds = ["int", "neg", "float", "str", "long", "bool", "null", "list", "dict", "digits"]
    kind = rng.choice(kinds if depth < 3 else kinds[:7])
    return {"int": lambda: rng.randint(0, 10**9), "neg": lambda: -rng.randint(1, 10**6),
            "float": lambda: rng.random() * 1000, "str": lambda: rng.choice(["", "x", "USD", "card", "id", "ü€", "\x00"]),
            "long": lambda: "z" * rng.choice([101, 256, 5000]), "bool": lambda: rng.random() < 0.5,
            "null": lambda: None, "digits": lambda: "4111111111111111",
            "list": lambda: [garbage(rng, depth + 1) for _ in range(rng.randint(0, 3))],
            "dict": lambda: {rng.choice(FIELDS): garbage(rng, depth + 1) for _ in range(rng.randint(0, 4))}}[kind]()


FIELDS = ["amount", "currency", "country", "payment_method", "method", "number", "expiration_date", "security_code",
          "id", "intent", "store", "payment_source", "merchant_initiated", "is_subsequent_payment",
          "previous_scheme_transaction_id", "buyer_id", "buyer", "billing_details", "address", "postal_code",
          "external_identifier", "metadata", "final", "reason", "target_type", "display_name", "email_address",
          "redirect_url", "async_capture"]


def mutate(rng, base):
    body = json.loads(json.dumps(base))
    for _ in range(rng.randint(1, 3)):
        node = body
        if isinstance(node.get("payment_method"), dict) and rng.random() < 0.5:
            node = node["payment_method"]
        node[rng.choice(FIELDS)] = garbage(rng)
    return body


def test_seeded_garbage_never_causes_a_500(server):
    pem = new_key()[0]
    sdk = client(server, pem)
    tx = sdk.transactions.create(amount=1000, currency="USD", payment_method=CARD, store=True)
    captured = sdk.transactions.create(amount=1000, currency="USD", payment_method=CARD, intent="capture")
    buyer = sdk.buyers.create(display_name="Fuzz")
    token = auth.get_token(pem, expires_in=3600)
    headers = {"authorization": f"Bearer {token}"}
    base_tx = {"amount": 100, "currency": "USD", "payment_method": dict(CARD)}
    targets = [
        ("POST", "/transactions", base_tx),
        ("POST", "/transactions", {**base_tx, "payment_method": {"method": "id", "id": tx.payment_method.id}}),
        ("POST", f"/transactions/{tx.id}/capture", {"amount": 10}),
        ("POST", f"/transactions/{tx.id}/void", {}),
        ("POST", f"/transactions/{captured.id}/refunds", {"amount": 1}),
        ("POST", f"/transactions/{captured.id}/refunds/all", {}),
        ("POST", "/payment-methods", {**CARD}),
        ("POST", "/buyers", {"display_name": "a", "billing_details": {"address": {"postal_code": "1"}}}),
        ("PUT", f"/buyers/{buyer.id}", {"display_name": "b"}),
    ]
    rng = random.Random(1234)
    statuses = set()
    for _ in range(400):
        method, path, base = rng.choice(targets)
        body = mutate(rng, base) if rng.random() < 0.9 else garbage(rng)
        resp = requests.request(method, f"{server.url}/gr4vy{path}", json=body, headers=headers, timeout=10)
        assert resp.status_code < 500, (method, path, body, resp.text)
        if resp.status_code >= 400:
            payload = resp.json()
            assert payload["type"] == "error" and payload["status"] == resp.status_code
        statuses.add(resp.status_code)
    for _ in range(150):
        params = {rng.choice(["limit", "cursor", "status", "amount_eq", "amount_gte", "metadata", "has_refunds",
                              "created_at_lte", "buyer_id", "search", "merchant_initiated", "sort_by", "order_by"]):
                  str(garbage(rng)) for _ in range(rng.randint(1, 3))}
        path = rng.choice(["/transactions", "/payment-methods", "/buyers", f"/transactions/{captured.id}/refunds",
                           f"/buyers/payment-methods?buyer_id={buyer.id}"])
        resp = requests.get(f"{server.url}/gr4vy{path}", params=params, headers=headers, timeout=10)
        assert resp.status_code < 500, (path, params, resp.text)
    assert {200, 201, 400} <= statuses


def _session(srv, pem):
    token = auth.get_token(pem)
    headers = {"authorization": f"Bearer {token}"}
    out = []
    for amount in (1000, 200011, 2000):
        resp = requests.post(f"{srv.url}/gr4vy/transactions", headers=headers, timeout=10,
                             json={"amount": amount, "currency": "USD", "payment_method": CARD, "store": True,
                                   "payment_source": "recurring"})
        out.append(resp.content)
    tx_id = json.loads(out[0])["id"]
    out.append(requests.post(f"{srv.url}/gr4vy/transactions/{tx_id}/capture", headers=headers, timeout=10,
                             json={"amount": 500}).content)
    out.append(requests.get(f"{srv.url}/gr4vy/transactions", headers=headers, timeout=10).content)
    return out


def test_same_seed_same_requests_same_bytes():
    pem = new_key()[0]
    with SandboxServer(START) as one:
        first = _session(one, pem)
    with SandboxServer(START) as two:
        second = _session(two, pem)
    assert first == second


def test_state_survives_a_restart(tmp_path):
    pem = new_key()[0]
    path = str(tmp_path / "state.db")
    with SandboxServer(START, state_path=path) as srv:
        sdk = client(srv, pem)
        cit = sdk.transactions.create(amount=1000, currency="USD", payment_method=CARD, store=True,
                                      payment_source="recurring")
        buyer = sdk.buyers.create(external_identifier="persist")
    with SandboxServer(START, state_path=path) as srv:
        sdk = client(srv, pem)
        assert sdk.transactions.get(transaction_id=cit.id).status == "authorization_succeeded"
        assert sdk.buyers.get(buyer_id=buyer.id).external_identifier == "persist"
        mit = sdk.transactions.create(amount=1000, currency="USD", merchant_initiated=True,
                                      payment_method={"method": "id", "id": cit.payment_method.id},
                                      payment_source="recurring", is_subsequent_payment=True)
        assert mit.status == "authorization_succeeded"
        assert sdk.payment_methods.get(payment_method_id=cit.payment_method.id).usage_count == 2
