"""A kill in the middle of an admin write. An unanswered POST /_sandbox/reset has happened whole
after a restart (it is marked in the state file before anything is cleared, and a start that finds
the mark finishes it): never half, with payments left without their pending webhook retries, or
idempotency keys answering with payments that are gone. A POST /_sandbox/hosted step is one record,
as a provider request is: a kill part-way leaves none of it."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import requests

from simulator.testing import SandboxServer

KEY = "sk_sbox_" + "r" * 27
CONFIG = {"seed": 3, "clock": {"start": "2026-01-01T00:00:00Z"}, "webhooks": "manual",
          "providers": {"checkout": {"webhook_url": "http://127.0.0.1:9/cko", "webhook_signing_key": "k"}}}
BODY = {"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
        "currency": "EUR", "amount": 1000}

# A process that makes payments, each with an idempotency key and events waiting for a receiver that
# is down, then dies (as kill -9 does: no clean stop) inside its reset, once the timers and the
# deliveries are cleared and before the store is
_KILLED_IN_RESET = textwrap.dedent("""
    import json, os, sys
    from simulator import create_app
    app = create_app(json.loads(sys.argv[2]), state_path=sys.argv[1])
    sandbox = app.extensions["sandbox"]
    client = app.test_client()
    for n in range(20):
        resp = client.post("/checkout/payments", json=json.loads(sys.argv[3]),
                           headers={"Authorization": "Bearer " + sys.argv[4], "Cko-Idempotency-Key": f"order-{n}"})
        assert resp.status_code == 201, resp.data
    client.post("/_sandbox/webhooks/flush")   # every event failed once: a retry waits for each
    print(json.dumps(client.get("/checkout/payments/" + resp.get_json()["id"],
                                headers={"Authorization": "Bearer " + sys.argv[4]}).get_json()["id"]))
    sys.stdout.flush()
    type(sandbox.store).reset = lambda self, tenant=None: os._exit(137)
    client.post("/_sandbox/reset", json={})
""")


def test_a_reset_killed_half_way_has_happened_whole_after_a_restart(tmp_path):
    import json
    state = str(tmp_path / "state.db")
    done = subprocess.run([sys.executable, "-c", _KILLED_IN_RESET, state, json.dumps(CONFIG), json.dumps(BODY), KEY],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 137, done.stderr
    last_payment = json.loads(done.stdout)
    with SandboxServer(CONFIG, state_path=state) as srv:
        auth = {"Authorization": "Bearer " + KEY}
        assert requests.get(f"{srv.url}/checkout/payments/{last_payment}", headers=auth, timeout=10).status_code == 404
        assert srv.webhooks() == []
        # the key's payment is gone, and so is the key: a retry makes a payment that exists
        again = requests.post(f"{srv.url}/checkout/payments", json=BODY, timeout=10,
                              headers={**auth, "Cko-Idempotency-Key": "order-19"})
        assert again.status_code == 201
        assert requests.get(f"{srv.url}/checkout/payments/{again.json()['id']}", headers=auth,
                            timeout=10).status_code == 200
        assert srv.sandbox.state.get("sandbox", "reset") is None   # finished, and unmarked


# A ZafaPay payment paid through /_sandbox/hosted by a process that dies (as kill -9 does) after the
# payment's event is queued and its card saved, before the payment itself is stored
_KILLED_IN_HOSTED = textwrap.dedent("""
    import json, os, sys
    from simulator import create_app
    from simulator.providers.zafapay.machine import Machine
    app = create_app(json.loads(sys.argv[2]), state_path=sys.argv[1])
    client = app.test_client()
    created = client.post("/zafapay/v1/payments", headers={"Authorization": "Bearer " + sys.argv[3]},
                          json={"amount": 10, "currency": "usd", "customer_id": "c1", "save_card": True}).get_json()
    print(json.dumps(created["id"]))
    sys.stdout.flush()
    store = Machine._store
    Machine._store = lambda self, tenant, pay: os._exit(137) if pay["status"] != "pending" else store(self, tenant, pay)
    client.post("/_sandbox/hosted/zafapay/" + created["id"], json={"outcome": "approve"})
""")


def test_a_hosted_step_killed_half_way_left_nothing_behind(tmp_path):
    import json
    state = str(tmp_path / "state.db")
    key = "zk_test_" + "h" * 24
    config = {"seed": 3, "clock": {"start": "2026-01-01T00:00:00Z"}, "webhooks": "manual",
              "providers": {"zafapay": {"webhook_url": "http://127.0.0.1:9/zp", "webhook_secret": "whsec_k"}}}
    done = subprocess.run([sys.executable, "-c", _KILLED_IN_HOSTED, state, json.dumps(config), key],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 137, done.stderr
    request_id = json.loads(done.stdout)
    with SandboxServer(config, state_path=state) as srv:
        shown = requests.get(f"{srv.url}/zafapay/v1/payments/{request_id}", timeout=10,
                             headers={"Authorization": "Bearer " + key})
        assert shown.status_code == 200 and shown.json()["status"] == "pending"
        assert srv.webhooks() == []   # no payment.succeeded for a payment that is pending
        assert srv.sandbox.store.list("zafapay", "payment_method", key) == []
