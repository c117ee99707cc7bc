"""The engine over HTTP: loading through the admin API, matching, counters, HTTP-layer effects.

The probes go to a path below the Checkout.com mount that no handler serves: scenario effects
apply before any provider code, so these tests hold whatever the provider does.
"""
import json
import time

import pytest
import requests
import yaml

from scenario_helpers import AUTH, KEY, MANUAL, OTHER_KEY

PROBE = "/checkout/probe"


def put(server, doc):
    body = doc if isinstance(doc, str) else yaml.safe_dump(doc)
    return server.admin("PUT", "/scenarios", data=body)


def marker_rule(name, **criteria):
    """A rule that answers 418 with its own name, so a probe shows which rule fired."""
    rule = {"name": name, "provider": "checkout", "effect": {"http_error": {"status": 418, "body": {"rule": name}}}}
    rule.update(criteria)
    return rule


def probe(server, body=None, key=KEY, path=PROBE, method="POST"):
    resp = requests.request(method, server.url + path, json=body, timeout=10,
                            headers={"Authorization": "Bearer " + key})
    return resp.json().get("rule") if resp.status_code == 418 else resp.status_code


def test_put_lists_and_delete_unloads(server):
    resp = put(server, {"name": "one", "rules": [marker_rule("r1")]})
    assert resp.status_code == 200 and resp.json()["loaded"] == "one"
    assert probe(server) == "r1"
    listing = server.admin("GET", "/scenarios").json()["scenarios"]
    assert [s["name"] for s in listing] == ["one"]
    rule = listing[0]["rules"][0]
    assert rule["name"] == "r1" and rule["scenario"] == "one" and rule["hits"] == 1
    assert rule["tenants"] == [{"tenant": KEY, "matches": 1, "hits": 1}]

    gone = server.admin("DELETE", "/scenarios")
    assert gone.status_code == 200 and gone.json()["unloaded"] == ["one"]
    assert server.admin("GET", "/scenarios").json()["scenarios"] == []
    assert probe(server) == 404


def test_json_body_is_accepted_and_same_name_replaces(server):
    doc = {"name": "one", "rules": [marker_rule("r1")]}
    # JSON, even tab-indented (which YAML alone would refuse)
    assert server.admin("PUT", "/scenarios", data=json.dumps(doc, indent="\t"),
                        headers={"Content-Type": "application/json"}).status_code == 200
    assert put(server, {"name": "one", "rules": [marker_rule("r2")]}).status_code == 200
    assert put(server, {"name": "two", "rules": [marker_rule("r3", path="/checkout/other")]}).status_code == 200
    listing = server.admin("GET", "/scenarios").json()["scenarios"]
    assert [(s["name"], [r["name"] for r in s["rules"]]) for s in listing] == [("one", ["r2"]), ("two", ["r3"])]
    assert probe(server) == "r2"
    resp = server.admin("DELETE", "/scenarios/one")
    assert resp.status_code == 200 and resp.json()["unloaded"] == ["one"]
    assert server.admin("DELETE", "/scenarios/one").status_code == 404
    assert probe(server) == 404 and probe(server, path="/checkout/other") == "r3"


def test_seed_in_a_put_document_is_reported_not_applied(server):
    resp = put(server, {"name": "s", "seed": 5, "rules": [marker_rule("r")]})
    assert resp.status_code == 200 and "start-up" in resp.json()["note"]


def test_dotted_paths_and_operators(server):
    rules = [
        marker_rule("eq-bool", match={"merchant_initiated": True}),
        marker_rule("eq-nested", match={"source.type": "id"}),
        marker_rule("range", match={"amount": {"gte": 100, "lte": 200}}),
        marker_rule("in-list", match={"currency": {"in": ["GBP", "USD"]}}),
        marker_rule("regex", match={"reference": {"regex": "^ORD-[0-9]+$"}}),
        marker_rule("list-index", match={"items.1.name": "second"}),
        marker_rule("absent", match={"customer": {"exists": False}, "note": "x"}),
        marker_rule("null-means-absent", match={"previous_payment_id": None, "note": "y"}),
    ]
    assert put(server, {"name": "ops", "rules": rules}).status_code == 200
    assert probe(server, {"merchant_initiated": True}) == "eq-bool"
    assert probe(server, {"merchant_initiated": 1}) == 404           # 1 is not true
    assert probe(server, {"merchant_initiated": "true"}) == 404
    assert probe(server, {"source": {"type": "id", "id": "src_x"}}) == "eq-nested"
    assert probe(server, {"source": {"type": "card"}}) == 404
    assert probe(server, {"amount": 100}) == "range"
    assert probe(server, {"amount": 200}) == "range"
    assert probe(server, {"amount": 201}) == 404
    assert probe(server, {"amount": 99}) == 404
    assert probe(server, {"amount": "150"}) == 404                   # a string is not a number
    assert probe(server, {"currency": "USD"}) == "in-list"
    assert probe(server, {"currency": "EUR"}) == 404
    assert probe(server, {"reference": "ORD-5023"}) == "regex"
    assert probe(server, {"reference": "ORD-5023-4E89"}) == 404
    assert probe(server, {"items": [{"name": "first"}, {"name": "second"}]}) == "list-index"
    assert probe(server, {"items": [{"name": "second"}]}) == 404
    assert probe(server, {"note": "x"}) == "absent"
    assert probe(server, {"note": "x", "customer": {"id": "cus_1"}}) == 404
    assert probe(server, {"note": "y"}) == "null-means-absent"
    assert probe(server, {"note": "y", "previous_payment_id": None}) == "null-means-absent"
    assert probe(server, {"note": "y", "previous_payment_id": "pay_x"}) == 404
    assert probe(server, None) == 404                                 # no body: no field matches
    assert probe(server, method="GET") == 404


def test_form_bodies_are_matched_too(server):
    assert put(server, {"name": "form", "rules": [marker_rule("form", match={"orderid": "42"})]}).status_code == 200
    resp = requests.post(server.url + PROBE, data={"orderid": "42"}, headers=AUTH, timeout=10)
    assert resp.status_code == 418


def test_provider_method_and_path_glob(server):
    rules = [
        {"name": "captures", "provider": "checkout", "method": "post", "path": "/checkout/payments/*/captures",
         "effect": {"http_error": {"status": 418, "body": {"rule": "captures"}}}},
        {"name": "any-provider", "provider": "any", "path": "/checkout/anything",
         "effect": {"http_error": {"status": 418, "body": {"rule": "any-provider"}}}},
    ]
    assert put(server, {"name": "paths", "rules": rules}).status_code == 200
    assert probe(server, path="/checkout/payments/pay_abc/captures") == "captures"
    assert probe(server, path="/checkout/payments/pay_abc/captures", method="GET") != "captures"
    assert probe(server, path="/checkout/payments/pay_abc/refunds") != "captures"
    assert probe(server, path="/checkout/anything") == "any-provider"
    assert requests.get(server.url + "/_sandbox/health", timeout=10).status_code == 200  # admin never matched


def test_nth_and_times_count_per_tenant_and_reset(server):
    rules = [marker_rule("third", path="/checkout/nth", nth=3), marker_rule("first-two", path="/checkout/times", times=2)]
    assert put(server, {"name": "counts", "rules": rules}).status_code == 200
    assert [probe(server, path="/checkout/nth") for _ in range(5)] == [404, 404, "third", 404, 404]
    assert [probe(server, path="/checkout/times") for _ in range(4)] == ["first-two", "first-two", 404, 404]
    # another tenant has its own counters
    assert [probe(server, path="/checkout/nth", key=OTHER_KEY) for _ in range(3)] == [404, 404, "third"]
    # resetting one tenant restarts only its counters
    assert server.admin("POST", "/reset", json={"tenant": OTHER_KEY}).status_code == 200
    assert [probe(server, path="/checkout/nth", key=OTHER_KEY) for _ in range(3)] == [404, 404, "third"]
    assert probe(server, path="/checkout/times") == 404
    listing = server.admin("GET", "/scenarios").json()["scenarios"][0]["rules"]
    assert {r["name"]: r["hits"] for r in listing} == {"third": 2, "first-two": 2}
    # a full reset restarts every counter and keeps the scenario loaded
    assert server.admin("POST", "/reset").status_code == 200
    assert [probe(server, path="/checkout/times") for _ in range(3)] == ["first-two", "first-two", 404]


def test_after_counts_on_each_tenants_own_clock_from_the_load(server):
    """A tenant running ten days ahead when the scenario is loaded waits its own day, as the
    others do; moving one tenant on fires the rule for that tenant only."""
    assert server.admin("POST", "/clock", json={"advance": "P10D", "tenant": OTHER_KEY}).status_code == 200
    assert put(server, {"name": "later", "rules": [marker_rule("a-day-on", after="P1D")]}).status_code == 200
    assert probe(server) == 404 and probe(server, key=OTHER_KEY) == 404
    assert server.admin("POST", "/clock", json={"advance": "P1D", "tenant": OTHER_KEY}).status_code == 200
    assert probe(server, key=OTHER_KEY) == "a-day-on" and probe(server) == 404
    assert server.admin("POST", "/clock", json={"advance": "P1D"}).status_code == 200
    assert probe(server) == "a-day-on"


def test_probability_zero_and_one(server):
    rules = [marker_rule("never", probability=0), marker_rule("always", probability=1.0)]
    assert put(server, {"name": "p", "rules": rules}).status_code == 200
    assert {probe(server) for _ in range(20)} == {"always"}


def test_several_rules_fire_together_and_are_named_in_the_journal(server):
    rules = [marker_rule("first"), {"name": "second", "provider": "any", "effect": {"http_error": 503}}]
    assert put(server, {"name": "both", "rules": rules}).status_code == 200
    assert probe(server) == "first"                 # the earlier rule's http_error wins
    entry = server.journal()[-1]
    assert entry["path"] == PROBE and entry["status"] == 418 and entry["rules"] == ["first", "second"]


def test_http_error_without_body_uses_the_provider_envelope(server):
    assert put(server, {"name": "e", "rules": [{"name": "down", "provider": "checkout",
                                                 "effect": {"http_error": {"status": 503}}}]}).status_code == 200
    resp = requests.get(server.url + "/checkout/payments/pay_x", headers=AUTH, timeout=10)
    assert resp.status_code == 503
    assert resp.json()["error_type"] == "service_unavailable"
    assert resp.headers.get("Cko-Request-Id")


def test_requests_that_fail_authentication_are_not_counted(server):
    assert put(server, {"name": "a", "rules": [marker_rule("r", path="/checkout/payments")]}).status_code == 200
    assert requests.post(server.url + "/checkout/payments", json={}, timeout=10).status_code == 401
    assert server.admin("GET", "/scenarios").json()["scenarios"][0]["rules"][0]["matches"] == 0


def test_latency_delays_the_response_by_at_least_its_amount(server):
    assert put(server, {"name": "slow", "rules": [{"name": "slow", "provider": "checkout", "path": "/checkout/slow",
                                                    "effect": {"latency_ms": 400}}]}).status_code == 200
    started = time.monotonic()
    resp = requests.get(server.url + "/checkout/slow", headers=AUTH, timeout=30)
    assert time.monotonic() - started >= 0.4
    assert resp.status_code == 404 and server.journal()[-1]["rules"] == ["slow"]


def test_dropped_connection_is_a_connection_error(server):
    doc = {"name": "drop", "rules": [
        {"name": "before", "provider": "checkout", "path": "/checkout/drop-before", "times": 1,
         "effect": {"drop_connection": True}},
        {"name": "after", "provider": "checkout", "path": "/checkout/drop-after", "times": 1,
         "effect": {"drop_connection": "after"}},
    ]}
    assert put(server, doc).status_code == 200
    for path in ("/checkout/drop-before", "/checkout/drop-after"):
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url + path, headers=AUTH, timeout=10)
        # the next request on a fresh connection behaves normally
        assert requests.get(server.url + path, headers=AUTH, timeout=10).status_code == 404
    assert [e["rules"] for e in server.journal()] == [["before"], [], ["after"], []]


def test_drop_after_processes_the_request(server):
    """drop_connection: after runs the handler (a payment is made) and loses the response."""
    assert put(server, {"name": "lost", "rules": [{"name": "lost", "provider": "checkout", "method": "POST",
                                                    "path": "/checkout/payments", "times": 1,
                                                    "effect": {"drop_connection": "after"}}]}).status_code == 200
    body = {"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030,
                       "cvv": "100"}, "amount": 100, "currency": "EUR"}
    with pytest.raises(requests.ConnectionError):
        requests.post(server.url + "/checkout/payments", json=body, headers=AUTH, timeout=10)
    entry = server.journal()[-1]
    assert entry["rules"] == ["lost"] and entry["status"] == 201
    made = entry["response"]["id"]
    assert requests.get(server.url + "/checkout/payments/" + made, headers=AUTH, timeout=10).status_code == 200


def test_dashboard_lists_rules_with_hits(server):
    assert put(server, {"name": "dash", "rules": [marker_rule("shown")]}).status_code == 200
    probe(server)
    page = requests.get(server.url + "/_sandbox/", timeout=10)
    assert page.status_code == 200 and "shown" in page.text


def test_rules_loaded_at_start_up(tmp_path):
    from simulator.testing import SandboxServer
    path = tmp_path / "start.yaml"
    path.write_text(yaml.safe_dump({"name": "boot", "rules": [marker_rule("boot-rule")]}))
    with SandboxServer(dict(MANUAL), scenario_files=[str(path)]) as srv:
        assert probe(srv) == "boot-rule"
        assert srv.admin("GET", "/scenarios").json()["scenarios"][0]["source"] == str(path)


def test_concurrent_requests_never_fire_a_rule_more_than_times(server):
    from concurrent.futures import ThreadPoolExecutor
    assert put(server, {"name": "c", "rules": [marker_rule("five", times=5)]}).status_code == 200
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: probe(server), range(30)))
    assert results.count("five") == 5 and results.count(404) == 25
    rule = server.admin("GET", "/scenarios").json()["scenarios"][0]["rules"][0]
    assert (rule["hits"], rule["matches"]) == (5, 30)
