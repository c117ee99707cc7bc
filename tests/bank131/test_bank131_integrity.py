"""No full card number kept or logged; concurrent confirms; deterministic ids for a seed."""
import json
import threading

import requests

from bank131_client import Bank, bank, first_payment, token_charge  # noqa: F401
from simulator.testing import SandboxServer, WebhookReceiver

PAN = "4242424242424242"


def test_pan_never_kept_or_logged(bank):
    bank.pay_and_confirm(first_payment())
    sid = bank.client.session("create", {"amount_details": {"amount": 100, "currency": "rub"}}).json()["session"]["id"]
    public_token = bank.client.post("/api/v1/token", {"acquiring_widget": {"session_id": sid}}).json()["public_token"]
    requests.post(f"{bank.server.url}/bank131/widget/{public_token}", timeout=10, data={
        "number": PAN, "expiration_month": "12", "expiration_year": "30", "security_code": "123"})
    bank.client.session("create", {"payment_details": {"type": "card", "card": {"type": "bank_card", "bank_card": {
        "number": PAN, "expiration_month": "12", "expiration_year": "30", "security_code": "123"}}}})
    bank.server.flush()
    store = bank.server.sandbox.store
    stored = json.dumps([store.list("bank131", kind, "my-project")
                         for kind in ("session", "payment", "recurrent_token", "public_token")])
    assert PAN not in stored and "4242" in stored
    journal = json.dumps(bank.server.journal(provider="bank131"))
    assert PAN not in journal and "424242******4242" in journal
    assert all(PAN.encode() not in r["body"] for r in bank.receiver.requests)


def test_concurrent_confirms_one_wins(bank):
    sid = bank.client.init_payment(first_payment()).json()["session"]["id"]
    results = []

    def confirm():
        results.append(bank.client.confirm(sid))
    threads = [threading.Thread(target=confirm) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [200] + [400] * 7
    finished = [h for h in bank.webhooks() if h["type"] == "payment_finished"]
    assert len(finished) == 1
    tokens = bank.server.sandbox.store.list("bank131", "recurrent_token", "my-project")
    assert len(tokens) == 1


def test_concurrent_charges_with_one_idempotency_key_make_one_session(bank):
    bank.pay_and_confirm(first_payment())
    token = bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]["recurrent"]["token"]
    before = len(bank.server.sandbox.store.list("bank131", "session", "my-project"))
    results = []

    def charge():
        results.append(bank.client.init_payment(token_charge(token), headers={"X-PARTNER-IDEMPOTENCY-KEY": "k"}))
    threads = [threading.Thread(target=charge) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [200] + [400] * 7
    assert len(bank.server.sandbox.store.list("bank131", "session", "my-project")) == before + 1


def test_disable_racing_confirms_never_lets_a_later_confirm_succeed(bank):
    """recurrent/disable against confirms of charges accepted while the token was active. Confirms
    racing the disable may go either way, but each decides once and consistently; a confirm sent
    after the disable was answered always fails (half of them wait for that answer, so there are
    always some)."""
    bank.pay_and_confirm(first_payment())
    token = bank.last_webhook("payment_finished")["session"]["acquiring_payments"][0]["recurrent"]["token"]
    sids = [bank.client.init_payment(token_charge(token)).json()["session"]["id"] for _ in range(12)]
    racing, waiting = sids[:6], sids[6:]
    start, acknowledged = threading.Barrier(len(racing) + 1), threading.Event()
    answers = {}

    def disable():
        start.wait()
        answers["disable"] = bank.client.disable(token)
        acknowledged.set()

    def confirm(sid, wait_for_disable):
        if wait_for_disable:
            assert acknowledged.wait(30)
        else:
            start.wait()
        answers[sid] = bank.client.confirm(sid)

    threads = [threading.Thread(target=disable)] + [
        threading.Thread(target=confirm, args=(sid, sid in waiting)) for sid in sids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers["disable"].status_code == 200 and answers["disable"].json()["recurrent"]["is_active"] is False
    outcomes = {}
    for sid in sids:
        assert answers[sid].status_code == 200, answers[sid].text
        session = answers[sid].json()["session"]
        payment = session["acquiring_payments"][0]
        outcomes[sid] = (session["status"], payment["status"], (payment.get("error") or {}).get("code"))
        assert bank.client.status(sid).json()["session"] == session   # decided once, as answered
    assert set(outcomes.values()) <= {("accepted", "succeeded", None),
                                      ("cancelled", "failed", "binding_is_deactivated")}
    assert {outcomes[sid] for sid in waiting} == {("cancelled", "failed", "binding_is_deactivated")}
    finished = {h["session"]["id"]: h["session"]["status"] for h in bank.webhooks() if h["type"] == "payment_finished"
                and h["session"]["id"] in outcomes}
    assert finished == {sid: outcome[0] for sid, outcome in outcomes.items()}


def test_same_seed_same_ids_and_bodies():
    bodies = []
    for _ in range(2):
        rcv = WebhookReceiver().start()
        srv = SandboxServer({"seed": 5, "clock": {"start": "2026-01-01T00:00:00Z"}, "webhooks": "manual"}).start()
        try:
            bank = Bank(srv, rcv)
            bank.pay_and_confirm(first_payment())
            srv.flush()
            bodies.append([r["body"] for r in rcv.requests])
        finally:
            srv.stop()
            rcv.stop()
    assert bodies[0] == bodies[1] and len(bodies[0]) == 2


def test_startup_lines_name_the_widget_and_key(server):
    lines = server.sandbox.providers["bank131"].startup_lines("http://127.0.0.1:8080")
    assert lines[0].split() == ["Bank", "131", "http://127.0.0.1:8080/bank131/"]
    assert "http://127.0.0.1:8080/_sandbox/keys/bank131" in lines[1]
