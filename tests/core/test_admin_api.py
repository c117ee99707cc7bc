"""The /_sandbox admin API (design.md section 3)."""
import requests

from simulator.testing import DEFAULT_START, SandboxServer

KEY = {"Authorization": "Bearer sk_sbox_" + "a" * 27}
CARD = {"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
        "currency": "EUR", "amount": 100}


def test_health(server):
    body = server.admin("GET", "/health").json()
    assert body["status"] == "ok" and "checkout" in body["providers"] and body["version"]


def test_clock_read_advance_set(server):
    assert server.admin("GET", "/clock").json()["now"] == "2026-01-01T00:00:00.000Z"
    assert server.admin("POST", "/clock", json={"advance": "P1DT1H"}).json()["now"] == "2026-01-02T01:00:00.000Z"
    assert server.admin("POST", "/clock", json={"advance_seconds": 60}).json()["now"] == "2026-01-02T01:01:00.000Z"
    assert server.admin("POST", "/clock", json={"set": "2027-01-01T00:00:00Z"}).json()["now"] == "2027-01-01T00:00:00.000Z"
    for bad in [{"advance": "soon"}, {"advance_seconds": "x"}, {"set": "tomorrow"}, {}, [1]]:
        resp = server.admin("POST", "/clock", json=bad)
        assert resp.status_code == 400 and resp.json()["error"]


def test_reset_drops_objects_journal_and_clock(server):
    pay = requests.post(server.url + "/checkout/payments", json=CARD, headers=KEY, timeout=10).json()
    server.advance("P1D")
    assert server.journal()
    server.admin("POST", "/reset")
    assert server.journal() == []
    assert server.admin("GET", "/clock").json()["now"] == "2026-01-01T00:00:00.000Z"
    again = requests.post(server.url + "/checkout/payments", json=CARD, headers=KEY, timeout=10).json()
    assert again["id"] == pay["id"]   # a full reset restarts the seeded id stream too
    server.admin("POST", "/reset")
    assert requests.get(f"{server.url}/checkout/payments/{pay['id']}", headers=KEY, timeout=10).status_code == 404


def test_journal_masks_cards_and_filters(server):
    requests.post(server.url + "/checkout/payments", json=CARD, headers=KEY, timeout=10)
    requests.get(server.url + "/checkout/payments/pay_x", timeout=10)
    entries = server.journal(provider="checkout")
    assert entries[0]["request"]["source"]["number"] == "424242******4242"
    assert entries[0]["tenant"] == "sk_sbox_" + "a" * 27 and entries[0]["status"] == 201
    assert entries[1]["status"] == 401 and entries[1]["tenant"] is None
    assert len(server.journal(limit=1)) == 1
    assert server.journal(tenant="nobody") == []
    assert "4242424242424242" not in server.admin("GET", "/requests").text


def test_config_put_and_masked_get(server):
    resp = server.admin("PUT", "/config", data="providers:\n  checkout:\n    webhook_signing_key: very-secret-key\n")
    assert resp.status_code == 200
    shown = server.admin("GET", "/config").json()
    assert shown["providers"]["checkout"]["webhook_signing_key"] != "very-secret-key"
    bad = server.admin("PUT", "/config", data="providers:\n  checkout:\n    nope: 1\n")
    assert bad.status_code == 400 and bad.json()["line"] == 3
    unknown = server.admin("PUT", "/config", data="providers:\n  stripe: {}\n")
    assert unknown.status_code == 400 and unknown.json()["line"] == 2


def test_config_put_leaves_the_seed_and_the_clock_as_they_run_and_says_so(server):
    before = server.admin("GET", "/config").json()
    now = server.admin("GET", "/clock").json()["now"]
    resp = server.admin("PUT", "/config", json={"seed": 5, "clock": {"start": "2030-01-01T00:00:00Z"},
                                                 "webhook_timeout": 2})
    assert resp.status_code == 200 and "seed and clock not changed" in resp.json()["note"]
    shown = server.admin("GET", "/config").json()
    assert (shown["seed"], shown["clock"], shown["webhook_timeout"]) == (before["seed"], before["clock"], 2)
    assert server.admin("GET", "/clock").json()["now"] == now
    # still checked: a wrong one is refused with its line, like any other key
    assert server.admin("PUT", "/config", data="seed: 1\nclock: {start: someday}\n").status_code == 400


def test_config_secret_keys_take_effect_at_run_time(server):
    server.admin("PUT", "/config", json={"providers": {"checkout": {"secret_keys": ["sk_sbox_" + "z" * 27]}}})
    assert requests.post(server.url + "/checkout/payments", json=CARD, headers=KEY, timeout=10).status_code == 401


def test_hosted_validation(server):
    assert server.admin("POST", "/hosted/checkout/pay_x", json={"outcome": "maybe"}).status_code == 400
    assert server.admin("POST", "/hosted/nope/x", json={}).status_code == 404
    assert server.admin("POST", "/hosted/checkout/pay_unknown", json={}).status_code == 404


def test_dashboard_renders(server):
    requests.post(server.url + "/checkout/payments", json=CARD, headers=KEY, timeout=10)
    page = server.admin("GET", "/")
    assert page.status_code == 200 and "PSP Sandbox" in page.text and "/checkout/payments" in page.text


def test_keys_endpoint_404_for_symmetric_providers(server):
    assert server.admin("GET", "/keys/checkout").status_code == 404


def test_flush_returns_attempted(receiver):
    with SandboxServer({"clock": {"start": DEFAULT_START}, "webhooks": "manual",
                        "providers": {"checkout": {"webhook_url": receiver.url}}}) as srv:
        requests.post(srv.url + "/checkout/payments", json=dict(CARD, capture=False), headers=KEY, timeout=10)
        attempted = srv.flush()
        assert [a["event_type"] for a in attempted] == ["payment_approved"]
        assert attempted[0]["status"] == "delivered" and attempted[0]["attempts"][0]["status"] == 200
        assert srv.flush() == []


def test_a_scenario_named_with_a_slash_is_unloaded_by_its_name(server):
    import yaml
    doc = {"name": "renewals/declined", "rules": [{"name": "r", "provider": "checkout", "effect": {"decline": "20051"}}]}
    assert server.admin("PUT", "/scenarios", data=yaml.safe_dump(doc)).status_code == 200
    resp = server.admin("DELETE", "/scenarios/renewals/declined")
    assert resp.status_code == 200 and resp.json()["unloaded"] and resp.json()["scenarios"] == []
    missing = server.admin("DELETE", "/scenarios/renewals/declined")
    assert missing.status_code == 404 and "renewals/declined" in missing.json()["error"]


def test_a_journal_limit_of_zero_lists_nothing_as_other_listings_do(server):
    requests.post(server.url + "/checkout/payments", json=CARD, headers=KEY, timeout=10)
    assert server.admin("GET", "/requests", params={"limit": 0}).json()["requests"] == []
    assert len(server.admin("GET", "/requests", params={"limit": 1}).json()["requests"]) == 1
    assert server.admin("GET", "/objects", params={"limit": 0}).json()["objects"] == []
