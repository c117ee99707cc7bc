"""ZafaPay payments found by either of their ids across a restart with a state file."""
import json
import sqlite3

import requests

from simulator.testing import SandboxServer, ServerProcess, free_port

from zafapay_helpers import ZafaPay, config


def test_a_payment_is_found_by_its_transaction_id_after_a_restart_without_an_alias_object(tmp_path):
    state = str(tmp_path / "state.db")
    with SandboxServer(config(), state_path=state) as srv:
        api = ZafaPay(srv.url)
        created = api.pay(external_id="order-1")
        assert created.status_code == 201, created.text
        req_id = created.json()["id"]
        paid = srv.hosted("zafapay", req_id, outcome="approve")
        assert paid.status_code == 200, paid.text
        tx_id = api.get(f"/v1/payments/{req_id}").json()["id"]
        assert tx_id.startswith("tx_")
    with sqlite3.connect(state) as db:
        kinds = {kind for (kind,) in db.execute("SELECT kind FROM objects WHERE provider = 'zafapay'")}
        assert kinds == {"payment"}   # the tx_ id is the payment's own field, indexed, not an object of its own
        tenant = db.execute("SELECT tenant FROM objects WHERE id = ?", (req_id,)).fetchone()[0]
        # what a file written before that index held beside each payment
        db.execute("INSERT INTO objects (provider, kind, id, tenant, data) VALUES ('zafapay', 'tx', ?, ?, ?)",
                   (tx_id, tenant, json.dumps({"request_id": req_id})))
    with SandboxServer(config(), state_path=state) as srv:
        api = ZafaPay(srv.url)
        for any_id in (tx_id, req_id):
            found = api.get(f"/v1/payments/{any_id}")
            assert found.status_code == 200, found.text
            assert (found.json()["id"], found.json()["request_id"]) == (tx_id, req_id)
        assert api.get("/v1/payments/tx_" + "0" * 24).status_code == 404
        # the hosted-page control carries no credentials: it finds the payment in any tenant
        again = srv.hosted("zafapay", tx_id, outcome="approve")
        assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_status"
        assert srv.hosted("zafapay", "tx_" + "0" * 24, outcome="approve").status_code == 404
        refunded = api.post(f"/v1/payments/{tx_id}/refund", {"amount": 10.00})
        assert refunded.status_code == 200, refunded.text
        assert api.get(f"/v1/payments/{tx_id}").json()["amount_refunded"] == "10.00"
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT count(*) FROM objects WHERE kind = 'tx'").fetchone()[0] == 0


def test_an_acknowledged_charge_is_found_by_its_transaction_id_after_a_kill_9(tmp_path):
    state, cfg = str(tmp_path / "state.db"), tmp_path / "config.json"
    cfg.write_text(json.dumps(config()))
    port = free_port()
    srv = ServerProcess("--state", state, "--config", str(cfg), port=port).wait_ready()
    try:
        api = ZafaPay(srv.url)
        first = api.pay(customer_id="cus_1", save_card=True).json()
        approved = requests.post(f"{srv.url}/_sandbox/hosted/zafapay/{first['id']}", json={"outcome": "approve"},
                                 timeout=10)
        assert approved.status_code == 200, approved.text
        charge = api.pay(customer_id="cus_1", payment_method_id=approved.json()["payment_method_id"])
        assert charge.status_code == 201, charge.text
        tx_id = charge.json()["transaction_id"]
    finally:
        srv.kill9()   # only what was committed before the 201 is there
    srv = ServerProcess("--state", state, "--config", str(cfg), port=port).wait_ready()
    try:
        found = ZafaPay(srv.url).get(f"/v1/payments/{tx_id}")
        assert found.status_code == 200, found.text
        assert found.json()["request_id"] == charge.json()["id"] and found.json()["status"] == "completed"
    finally:
        srv.stop()


def test_a_partial_capture_kept_by_an_older_state_file_reads_as_the_captured_amount(tmp_path):
    state = str(tmp_path / "state.db")
    with SandboxServer(config(), state_path=state) as srv:
        api = ZafaPay(srv.url)
        first = api.pay(customer_id="cus_old", save_card=True).json()
        pmi = srv.hosted("zafapay", first["id"], outcome="approve").json()["payment_method_id"]
        captured = api.pay(customer_id="cus_old", payment_method_id=pmi, amount=4.00).json()
        authorized = api.pay(customer_id="cus_old", payment_method_id=pmi, amount=10.00, capture_method="manual").json()
    with sqlite3.connect(state) as db:
        # how a file written before captures rewrote the amount held them: 10.00 authorized beside
        # 4.00 captured, and 0 captured on a payment still authorized
        for req_id, captured_minor in ((captured["id"], 400), (authorized["id"], 0)):
            db.execute("UPDATE objects SET data = json_set(data, '$.amount', 1000, '$.amount_captured', ?)"
                       " WHERE provider = 'zafapay' AND kind = 'payment' AND id = ?", (captured_minor, req_id))
    with SandboxServer(config(), state_path=state) as srv:
        api = ZafaPay(srv.url)
        tx = captured["transaction_id"]
        got = api.get(f"/v1/payments/{tx}").json()
        assert (got["status"], got["amount"], got["amount_refunded"]) == ("completed", "4.00", "0.00")
        assert "amount_captured" not in got
        assert api.post(f"/v1/payments/{tx}/refund", {"amount": 5.00}).json()["error"]["code"] == "invalid_amount"
        assert api.post(f"/v1/payments/{tx}/refund", {}).json()["amount"] == "4.00"
        assert api.get(f"/v1/payments/{tx}").json()["amount_refunded"] == "4.00"
        still = api.get(f"/v1/payments/{authorized['id']}").json()
        assert (still["status"], still["amount"]) == ("authorized", "10.00") and "amount_captured" not in still
        assert api.post(f"/v1/payments/{authorized['transaction_id']}/capture", {}).json()["amount"] == 10.0
