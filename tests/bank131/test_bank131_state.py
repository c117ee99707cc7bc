"""A Bank 131 payment found by its id (the 3-D Secure page) across a restart with a state file."""
import json
import sqlite3

import requests

from bank131_client import Bank131Client, card, first_payment, new_key, public_pem
from simulator.providers.bank131 import testcards
from simulator.testing import DEFAULT_START, SandboxServer


def test_the_3ds_page_finds_its_payment_after_a_restart_without_an_alias_object(tmp_path):
    state, key = str(tmp_path / "state.db"), new_key()
    config = {"clock": {"start": DEFAULT_START}, "webhooks": "manual",
              "providers": {"bank131": {"projects": {"shop": {"public_key": public_pem(key)}}}}}
    with SandboxServer(config, state_path=state) as srv:
        client = Bank131Client(srv.url, "shop", key)
        sid = client.init_payment(first_payment(details=card(testcards.THREE_DS_CARD))).json()["session"]["id"]
        payment = client.confirm(sid).json()["session"]["acquiring_payments"][0]
        page = payment["customer_interaction"]["redirect"]["url"].replace(srv.url, "")
        assert page == f"/bank131/3ds/{payment['id']}"
    with sqlite3.connect(state) as db:
        kinds = {kind for (kind,) in db.execute("SELECT kind FROM objects WHERE provider = 'bank131'")}
        assert kinds == {"session"}   # the payment lives in its session, found by an index on its id
        tenant = db.execute("SELECT tenant FROM objects WHERE id = ?", (sid,)).fetchone()[0]
        # what a file written before that index held beside each payment
        db.execute("INSERT INTO objects (provider, kind, id, tenant, data) VALUES ('bank131', 'payment', ?, ?, ?)",
                   (payment["id"], tenant, json.dumps({"session_id": sid})))
    with SandboxServer(config, state_path=state) as srv:
        client = Bank131Client(srv.url, "shop", key)
        assert requests.get(srv.url + page, timeout=10).status_code == 200
        assert requests.get(srv.url + "/bank131/3ds/pm_000000001", timeout=10).status_code == 404
        assert requests.post(srv.url + page, data={"result": "pass"}, timeout=10).status_code == 200
        assert client.status(sid).json()["session"]["status"] == "accepted"
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT count(*) FROM objects WHERE provider = 'bank131' AND kind = 'payment'").fetchone()[0] == 0
