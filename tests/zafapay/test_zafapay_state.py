"""ZafaPay payments found by either of their ids across a restart with a state file."""
import json
import sqlite3

from simulator.testing import SandboxServer

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
