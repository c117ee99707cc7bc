"""Admin API input checks and masking: a misspelt or contradictory body is a 400 that changes
nothing, counts and durations take ASCII digits only, and what the admin API shows of webhook
payloads and scenario rules has card numbers masked like the journal does."""
import json
import time

import pytest
import requests

from simulator.testing import DEFAULT_START, ReceiverServer, SandboxServer

KEY = "sk_sbox_" + "a" * 27
OTHER = "sk_sbox_" + "b" * 27
PAN = "4111111111111111"
MASKED = "411111******1111"


def pay(server, key=KEY, **extra):
    body = {"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
            "currency": "EUR", "amount": 100, **extra}
    resp = requests.post(server.url + "/checkout/payments", json=body, headers={"Authorization": "Bearer " + key},
                         timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def found(server, payment, key=KEY) -> bool:
    resp = requests.get(f"{server.url}/checkout/payments/{payment['id']}",
                        headers={"Authorization": "Bearer " + key}, timeout=10)
    return resp.status_code == 200


def clock(server, tenant=None) -> str:
    return server.admin("GET", "/clock", params={"tenant": tenant} if tenant else {}).json()["now"]


# -- 1. reset ---------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [{"tenat": KEY}, {"extra": 1}, {"tenant": KEY, "extra": 1}, {"tenant": ""},
                                  {"tenant": 5}, {"tenant": None}, {"tenant": [KEY]}])
def test_reset_refuses_unknown_fields_and_bad_tenants(server, body):
    mine, theirs = pay(server), pay(server, OTHER)
    resp = server.admin("POST", "/reset", json=body)
    assert resp.status_code == 400 and resp.json()["error"], resp.text
    assert found(server, mine) and found(server, theirs, OTHER) and server.journal()


def test_reset_of_one_tenant_or_of_everything(server):
    mine, theirs = pay(server), pay(server, OTHER)
    assert server.admin("POST", "/reset", json={"tenant": "nobody"}).status_code == 200   # nothing to reset
    assert found(server, mine) and found(server, theirs, OTHER)
    assert server.admin("POST", "/reset", json={"tenant": OTHER}).json() == {"status": "reset", "tenant": OTHER}
    assert found(server, mine) and not found(server, theirs, OTHER)
    assert server.admin("POST", "/reset", json={}).status_code == 200
    assert not found(server, mine)
    pay(server)
    assert server.admin("POST", "/reset").status_code == 200   # no body at all
    assert server.journal() == []


# -- 2. clock: one move at a time, no unknown fields ------------------------------------------------

@pytest.mark.parametrize("body", [
    {"advance": "P1D", "set": "2027-01-01T00:00:00Z"},
    {"advance": "P1D", "advance_seconds": 60},
    {"advance_seconds": 60, "set": "2027-01-01T00:00:00Z"},
    {"advance": "P1D", "advance_seconds": 60, "set": "2027-01-01T00:00:00Z"},
    {"advance": "P1D", "tenat": KEY},
    {"advance": "P1D", "tenant": ""},
    {"advance": "P1D", "tenant": None},
])
def test_clock_refuses_contradictory_or_misspelt_moves(server, body):
    before = (clock(server), clock(server, KEY))
    resp = server.admin("POST", "/clock", json=body)
    assert resp.status_code == 400 and resp.json()["error"], resp.text
    assert (clock(server), clock(server, KEY)) == before


def test_reading_the_clock_of_an_empty_tenant_is_refused_as_moving_it_is(server):
    resp = server.admin("GET", "/clock", params={"tenant": ""})
    assert resp.status_code == 400 and "tenant" in resp.json()["error"]
    assert server.admin("GET", "/clock", params={"tenant": KEY}).json()["tenant"] == KEY


class HeldReceiver:
    """A receiver that holds each webhook until released: a clock move that attempts one is then
    under way for as long as a test needs another request to come in beside it."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler
        self.arrived, self.release = threading.Event(), threading.Event()
        held = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                held.arrived.set()
                held.release.wait(4)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ReceiverServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    def stop(self):
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def held():
    receiver = HeldReceiver()
    with SandboxServer({"seed": 1, "clock": {"start": DEFAULT_START}, "webhooks": "manual",
                        "providers": {"checkout": {"webhook_url": receiver.url}}}) as srv:
        pay(srv)   # its events wait for the next move of the clock, which attempts them
        yield srv, receiver
    receiver.stop()


def _in_background(server, path, body):
    import threading
    answers = []
    thread = threading.Thread(target=lambda: answers.append(server.admin("POST", path, json=body)))
    thread.start()
    return thread, answers


def test_two_sets_of_the_clock_at_once_end_at_the_instant_set(held):
    server, receiver = held
    first, first_answer = _in_background(server, "/clock", {"set": "2028-01-01T00:00:00Z"})
    assert receiver.arrived.wait(5)   # the first move is under way, attempting the events
    second, second_answer = _in_background(server, "/clock", {"set": "2028-01-01T00:00:00Z"})
    time.sleep(0.5)   # the second is in: worked out from the clock before the first moved it, it would apply again
    receiver.release.set()
    first.join(10), second.join(10)
    assert first_answer[0].status_code == second_answer[0].status_code == 200
    assert clock(server) == "2028-01-01T00:00:00.000Z"


def test_a_reset_during_an_advance_is_not_undone_by_the_rest_of_the_advance(held):
    server, receiver = held
    advance, answer = _in_background(server, "/clock", {"advance": "P2D"})
    assert receiver.arrived.wait(5)
    assert server.admin("POST", "/reset", json={}).status_code == 200
    receiver.release.set()
    advance.join(10)
    assert answer[0].status_code == 200
    assert clock(server) == "2026-01-01T00:00:00.000Z"   # where the reset left it


# -- 3. ASCII digits only in durations and instants ------------------------------------------------

@pytest.mark.parametrize("body", [{"advance": "P\u0661D"}, {"advance": "P\u0663D"}, {"advance": "P\uff11D"},
                                  {"advance": "PT\u06f5M"}, {"advance": "PT1\u017f"}, {"advance": "P1D\u3000"},
                                  {"set": "\u0662\u0660\u0662\u0667-01-01T00:00:00Z"},
                                  {"set": "2027-01-01T00:00:00Z\u3000"}])
def test_clock_takes_ascii_digits_only(server, body):
    before = clock(server)
    resp = server.admin("POST", "/clock", json=body)
    assert resp.status_code == 400 and resp.json()["error"], resp.text
    assert clock(server) == before


def test_scenario_durations_take_ascii_digits_only(server):
    doc = {"name": "slow", "rules": [{"name": "r", "provider": "checkout", "effect": {"webhook": {"delay": "PT\u0661M"}}}]}
    resp = server.admin("PUT", "/scenarios", data=json.dumps(doc), headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"], resp.text
    assert server.admin("GET", "/scenarios").json()["scenarios"] == []
    doc["rules"][0]["effect"]["webhook"]["delay"] = "PT1M"
    assert server.admin("PUT", "/scenarios", json=doc).status_code == 200


# -- 4. counts in query arguments ------------------------------------------------------------------

@pytest.mark.parametrize("path, name", [("/requests", "limit"), ("/objects", "limit"), ("/objects", "offset")])
@pytest.mark.parametrize("value", ["9" * 5000, "1" * 10, "\u0663", "\uff15", "-1", "x", "1 "],
                         ids=["5000-digits", "10-digits", "arabic-indic", "fullwidth", "negative", "letter", "space"])
def test_counts_are_ascii_digits_with_the_same_error(server, path, name, value):
    resp = server.admin("GET", path, params={name: value})
    assert resp.status_code == 400, resp.text
    assert resp.json() == {"error": f"{name} must be a non-negative integer"}


def test_counts_still_work(server):
    pay(server)
    pay(server)
    assert len(server.journal(limit=1)) == 1
    assert len(server.admin("GET", "/objects", params={"limit": "1", "offset": "1"}).json()["objects"]) == 1


def test_a_huge_number_in_a_body_is_refused_in_our_words(server):
    resp = server.admin("POST", "/clock", data='{"advance_seconds": ' + "9" * 5000 + "}",
                        headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "4300" not in resp.json()["error"], resp.text


# -- 5. webhook payloads shown masked ----------------------------------------------------------------

def test_webhook_payloads_are_shown_masked_and_sent_as_they_are(receiver):
    with SandboxServer({"seed": 1, "clock": {"start": DEFAULT_START}, "webhooks": "manual",
                        "providers": {"checkout": {"webhook_url": receiver.url}}}) as srv:
        payment = pay(srv, reference=f"ref {PAN}")
        listed = srv.webhooks()
        assert listed and PAN not in srv.admin("GET", "/webhooks").text
        approved = next(d for d in listed if d["event_type"] == "payment_approved")
        assert json.loads(approved["payload"])["data"]["reference"] == f"ref {MASKED}"   # still a JSON string
        attempted = srv.flush()
        assert attempted and all(PAN not in json.dumps(d) for d in attempted)
        assert any(r.get("data", {}).get("reference") == f"ref {PAN}" for r in receiver.json())   # sent in full
        again = srv.admin("POST", f"/webhooks/{approved['id']}/redeliver", json={})
        assert again.status_code == 200 and PAN not in again.text
        timeline = srv.admin("GET", f"/objects/checkout/payment/{payment['id']}/timeline")
        assert timeline.status_code == 200 and PAN not in timeline.text


def test_payload_masking_keeps_the_layout_and_stays_json():
    from simulator.admin.timeline import masked_payload
    plain = '{"id": "evt_1", "amount": 100}'
    assert masked_payload(plain) is plain
    spaced = '{"reference": "ref 4111111111111111", "n": 1}'
    assert masked_payload(spaced) == '{"reference": "ref 411111******1111", "n": 1}'
    unquoted = '{"number": 4111111111111111, "cvv": 123}'
    assert json.loads(masked_payload(unquoted)) == {"number": MASKED, "cvv": "***"}
    escaped = '{"reference": "\\u0034111111111111111"}'
    assert PAN not in json.loads(masked_payload(escaped))["reference"]
    form = "orderid=1&p_email=x&number=4111111111111111"
    assert masked_payload(form) == "orderid=1&p_email=x&number=411111******1111"


# -- 6. scenario rules shown masked --------------------------------------------------------------

def test_scenario_listing_masks_card_numbers(server):
    doc = ("name: by-card\nrules:\n  - name: this-card\n    provider: checkout\n"
           f"    match: {{source.number: '{PAN}'}}\n    effect: {{decline: '20051'}}\n")
    loaded = server.admin("PUT", "/scenarios", data=doc, headers={"Content-Type": "application/yaml"})
    assert loaded.status_code == 200 and PAN not in loaded.text
    listing = server.admin("GET", "/scenarios")
    assert PAN not in listing.text
    assert listing.json()["scenarios"][0]["rules"][0]["match"] == {"source.number": MASKED}
    # the rule still matches on the full number
    body = {"source": {"type": "card", "number": PAN, "expiry_month": 12, "expiry_year": 2030},
            "currency": "EUR", "amount": 100}
    resp = requests.post(server.url + "/checkout/payments", json=body, headers={"Authorization": "Bearer " + KEY},
                         timeout=10)
    assert resp.json().get("response_code") == "20051", resp.text
