"""The admin API under hostile input and from a hostile web page: every bad body is a 400 with a
reason, a cross-site or form-typed state change is refused (403/415) and changes nothing, config
refuses URLs and keys that cannot work, a non-loopback --host is warned about."""
from __future__ import annotations

import copy
import json
import random
import subprocess
import sys

import pytest
import requests
from hostile_helpers import CKO_KEY, object_keys
from test_random_bodies import seed_objects


DEEP_ARRAY = b"[" * 900 + b"]" * 900
DEEP_OBJECT = b'{"a":' * 900 + b"1" + b"}" * 900
JSON = {"Content-Type": "application/json"}
STATE_CHANGES = [("POST", "/reset"), ("POST", "/clock"), ("PUT", "/config"), ("PUT", "/scenarios"),
                 ("POST", "/hosted/checkout/pay_x"), ("POST", "/webhooks/flush"), ("DELETE", "/scenarios")]


def state(server) -> tuple:
    """What a refused admin call must leave as it was."""
    return (server.admin("GET", "/clock").json()["now"], server.admin("GET", "/config").json(),
            server.admin("GET", "/scenarios").json(), object_keys(server))


def a_payment(server):
    resp = requests.post(server.url + "/checkout/payments", headers={"Authorization": CKO_KEY}, timeout=10, json={
        "source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
        "amount": 100, "currency": "EUR"})
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize("method, path", STATE_CHANGES[:5])
@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT, b'{"tenant": "\\ud83d", "advance": "\\udc00"}'],
                         ids=["deep-array", "deep-object", "surrogate"])
def test_bad_bodies_are_400_with_a_reason(server, method, path, body):
    a_payment(server)
    before = state(server)
    resp = server.admin(method, path, data=body, headers=JSON)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]
    assert state(server) == before


@pytest.mark.parametrize("body", [{"advance": "P99999999D"}, {"advance_seconds": 1e300}, {"advance_seconds": float("nan")},
                                  {"set": "9999-12-31T23:59:59Z", "advance_seconds": None}, {"tenant": ["x"], "advance": "PT1M"},
                                  {"set": "0001-01-01T00:00:00+14:00"}])
def test_clock_refuses_impossible_moves(server, body):
    before = state(server)
    resp = server.admin("POST", "/clock", data=json.dumps(body), headers=JSON)
    assert resp.status_code == 400 and resp.json()["error"], resp.text
    assert state(server) == before


@pytest.mark.parametrize("body", [{"set": "9999-12-31T23:00:00Z"}, {"set": "9000-01-01T00:00:00Z"},
                                  {"set": "1969-12-31T23:59:59Z"}, {"advance_seconds": -3e9}])
def test_the_clock_stays_where_providers_can_still_schedule_from_it(server, body):
    # at 9999-12-31 every Checkout payment was a 500 (now + 7 days of authorization overflowed)
    before = state(server)
    resp = server.admin("POST", "/clock", data=json.dumps(body), headers=JSON)
    assert resp.status_code == 400 and "1970-01-01 to 8999-12-31" in resp.json()["error"], resp.text
    assert state(server) == before


def test_the_latest_clock_still_takes_payments_and_a_tenant_ahead_bounds_the_shared_clock(server):
    assert server.admin("POST", "/clock", json={"set": "8999-12-31T23:00:00Z"}).status_code == 200
    resp = requests.post(server.url + "/checkout/payments", headers={"Authorization": CKO_KEY}, timeout=10, json={
        "source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 9999},
        "amount": 100, "currency": "EUR"})
    assert resp.status_code == 201 and resp.json()["approved"], resp.text
    assert server.admin("POST", "/clock", json={"set": "2026-01-01T00:00:00Z"}).status_code == 200
    tenant = CKO_KEY.split()[-1]
    assert server.admin("POST", "/clock", json={"advance": "P1000D", "tenant": tenant}).status_code == 200
    # the shared clock may not carry the tenant running ahead of it past the range
    resp = server.admin("POST", "/clock", json={"set": "8999-06-01T00:00:00Z"})
    assert resp.status_code == 400 and "8999-12-31" in resp.json()["error"]


@pytest.mark.parametrize("document, reason", [
    ("seed: " + "9" * 5000, "seed: a number of more than"),
    ("clock: {start: 2026-02-30}", "clock.start: not a date or timestamp"),
    ("clock: {start: '9999-12-31T00:00:00Z'}", "clock.start: the clock must stay within"),
    ('providers: {checkout: {webhook_signing_key: "k\\ud800"}}', "invalid Unicode"),
    ("webhook_timeout: .nan", "webhook_timeout: must be a finite number"),
    ("providers: {zafapay: {webhook_schedule: [P3000000D]}}", "webhook_schedule: must be at most P36525D"),
    ("providers: {bank131: {confirm_timeout: P99999999999D}}", "confirm_timeout: must be at most P36525D"),
], ids=["long-int", "no-such-date", "clock-start", "surrogate", "nan", "schedule", "timeout"])
def test_config_documents_that_no_run_could_carry_are_400_with_their_line(server, document, reason):
    before = state(server)
    resp = server.admin("PUT", "/config", data=document, headers={"Content-Type": "application/yaml"})
    assert resp.status_code == 400 and reason in resp.json()["error"] and resp.json()["line"] == 1, resp.text
    assert state(server) == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"])
@pytest.mark.parametrize("method, path", STATE_CHANGES)
def test_form_typed_state_change_is_415(server, method, path, content_type):
    a_payment(server)
    before = state(server)
    body = '{"advance": "P1D"}' if path != "/config" else '{"webhooks": "auto"}'
    resp = server.admin(method, path, data=body, headers={"Content-Type": content_type})
    assert resp.status_code == 415, resp.text
    assert state(server) == before


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:1", "http://localhost"])
@pytest.mark.parametrize("method, path", STATE_CHANGES)
def test_cross_site_origin_is_403(server, method, path, origin):
    a_payment(server)
    before = state(server)
    resp = server.admin(method, path, json={"advance": "P1D"}, headers={"Origin": origin})
    assert resp.status_code == 403, resp.text
    assert state(server) == before


def test_same_origin_and_plain_clients_still_work(server):
    own = server.url
    assert server.admin("POST", "/clock", json={"advance": "PT1M"}, headers={"Origin": own}).status_code == 200
    assert server.admin("PUT", "/scenarios", data="name: s\nrules: []\n",
                        headers={"Content-Type": "application/yaml"}).status_code == 200
    assert server.admin("POST", "/webhooks/flush").status_code == 200          # curl -X POST: no body, no type
    assert server.admin("POST", "/reset").status_code == 200
    assert server.admin("GET", "/clock", headers={"Origin": "https://evil.example"}).status_code == 200


@pytest.mark.parametrize("section", [
    {"checkout": {"webhook_url": "not a url"}},
    {"checkout": {"webhook_url": "javascript:alert(1)"}},
    {"gr4vy": {"webhook_url": "ftp://hooks.example/x"}},
    {"bank131": {"projects": {"p": {"webhook_url": "http://hooks.example/\r\nX: y"}}}},
    {"bank131": {"webhook_url": "//hooks.example"}},
    {"zafapay": {"webhook_url": "hooks.example/zp"}},
    {"zafapay": {"success_redirect_url": "javascript:alert(1)"}},
    {"zafapay": {"failure_redirect_url": "data:text/html,<script>alert(1)</script>"}},
    {"checkout": {"secret_keys": ["my-key"]}},
    {"checkout": {"secret_keys": ["sk_sbox_" + "a" * 27 + "\n"]}},
    {"zafapay": {"api_keys": ["short"]}},
    {"zafapay": {"publishable_keys": {"not-pk": "zp_test_merchant_one_0001"}}},
], ids=lambda s: json.dumps(s)[:60])
def test_config_refuses_urls_and_keys_that_cannot_work(server, section):
    before = state(server)
    resp = server.admin("PUT", "/config", json={"providers": section})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("providers.")
    assert state(server) == before
    # a key that does fit still locks out nobody it names
    assert server.admin("PUT", "/config", json={"providers": {"checkout": {"secret_keys": [CKO_KEY]}}}).status_code == 200


def test_yaml_alias_bomb_is_refused(server):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    resp = server.admin("PUT", "/config", data="\n".join(levels), headers={"Content-Type": "application/yaml"})
    assert resp.status_code == 400 and "aliases" in resp.json()["error"]
    resp = server.admin("PUT", "/scenarios", data="name: s\n" + "\n".join(levels), headers={"Content-Type": "application/yaml"})
    assert resp.status_code == 400 and "aliases" in resp.json()["error"]


def test_config_file_with_a_bad_webhook_url_is_one_line_exit_2(tmp_path):
    cfg = tmp_path / "sandbox.yaml"
    cfg.write_text("providers:\n  checkout:\n    webhook_url: javascript:alert(1)\n")
    result = subprocess.run([sys.executable, "-m", "simulator", "--config", str(cfg), "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"psp-sandbox: {cfg}:3: providers.checkout.webhook_url: must be an absolute http or https URL"]


def test_non_loopback_host_warns_that_the_admin_api_is_open():
    # 192.0.2.1 (TEST-NET-1) is never assigned here: the warning comes first, then the bind fails
    result = subprocess.run([sys.executable, "-m", "simulator", "--host", "192.0.2.1", "--port", "0"],
                            capture_output=True, text=True, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 2, result.stderr
    assert "warning" in lines[0] and "no authentication" in lines[0]
    from simulator.cli import loopback
    assert [h for h in ("127.0.0.1", "::1", "[::1]", "localhost", "127.8.9.10") if not loopback(h)] == []
    assert [h for h in ("0.0.0.0", "::", "192.168.1.2", "example.com") if loopback(h)] == []


ADMIN_BODIES = {
    ("POST", "/clock"): {"advance": "PT1M", "tenant": "t"},
    ("POST", "/reset"): {"tenant": "t"},
    ("PUT", "/config"): {"webhooks": "manual", "webhook_timeout": 5,
                         "providers": {"checkout": {"webhook_url": "http://127.0.0.1:9/x"}}},
    ("PUT", "/scenarios"): {"name": "s", "rules": [{"name": "r", "match": {"provider": "checkout"},
                                                    "effect": {"decline": "20051"}}]},
    ("POST", "/hosted/PROVIDER/ID"): {"outcome": "approve", "three_ds": "pass", "recurring_consent": True,
                                      "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030,
                                               "cvv": "100"}},
}
HOSTILE = ["\ud83d", 2**63, 1e300, float("nan"), -1, "", None, True, [], {}, "P99999999D", "x" * 3000,
           "javascript:alert(1)", [[[[[]]]]], {"a": {"b": {"c": {}}}}]


def test_random_admin_bodies_never_500(hostile):
    """Seeded mutations of a valid body on every state-changing admin endpoint, against every
    provider's objects (some waiting on a hosted page): no 5xx, and a refused call changes nothing."""
    rng = random.Random(20261129)
    server = hostile.server
    for provider in ("checkout", "gr4vy", "paysera", "bank131", "zafapay"):
        seed_objects(hostile, provider)
    waiting = sorted((k[0], k[2]) for k in object_keys(server))
    failures = []
    for _ in range(200):
        (method, path), base = rng.choice(sorted(ADMIN_BODIES.items()))
        if "PROVIDER" in path:
            provider, object_id = rng.choice(waiting + [("zafapay", "req_x"), ("nobody", "x")])
            path = f"/hosted/{provider}/{object_id}"
        body = copy.deepcopy(base)
        node, key = body, None
        while isinstance(node, dict) and node and rng.random() < 0.7:
            key = rng.choice(sorted(node))
            if not isinstance(node[key], dict):
                break
            node = node[key]
        if isinstance(node, dict):
            node[key or "extra"] = copy.deepcopy(rng.choice(HOSTILE))
        raw = json.dumps(body).encode()
        watched = path in ("/clock", "/config", "/scenarios")
        before = state(server) if watched else None
        resp = server.admin(method, path, data=raw, headers=JSON)
        if resp.status_code >= 500:
            failures.append(f"{method} {path} {raw[:200]!r}: {resp.status_code} {resp.text[:200]}")
        elif resp.status_code >= 400 and watched and state(server) != before:
            failures.append(f"{method} {path} {raw[:200]!r}: refused but changed the sandbox")
    assert not failures, "\n".join(failures[:10])
