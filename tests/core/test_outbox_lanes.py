"""Attempts due at one instant go out in parallel, but one object's events keep their order."""
import json

from simulator.core.runtime import Sandbox
from simulator.testing import DEFAULT_START


def test_events_of_one_subject_arrive_in_order_while_subjects_go_in_parallel(receiver):
    sb = Sandbox(seed=1, clock_start=DEFAULT_START, webhooks_mode="manual")
    try:
        for step in range(4):
            for subject in range(25):
                sb.outbox.enqueue(provider="none", tenant="t", event_type="e", url=receiver.url, schedule=[],
                                  subject=f"pay_{subject}", body=json.dumps([subject, step]).encode())
        assert len(sb.outbox.flush()) == 100
        seen: dict[int, list[int]] = {}
        for subject, step in receiver.json():
            seen.setdefault(subject, []).append(step)
        assert seen == {subject: [0, 1, 2, 3] for subject in range(25)}
    finally:
        sb.close()


def test_pending_deliveries_and_their_timers_leave_a_full_collection_one_object_each(tmp_path):
    # a sandbox may hold up to 100k deliveries waiting for a receiver; every full pass of the
    # cyclic GC walks what it tracks, with every request thread stopped meanwhile
    import gc
    from datetime import timedelta

    def pending(sb, n, **extra):
        return [sb.outbox.enqueue(provider="none", tenant="t", event_type="e", url="http://127.0.0.1:9/hook",
                                  body=b'{"n": 1}', schedule=[timedelta(minutes=5)] * 3, subject=f"pay_{i}",
                                  **extra)[0] for i in range(n)]

    path = str(tmp_path / "state.db")
    sb = Sandbox(seed=1, clock_start=DEFAULT_START, webhooks_mode="manual", state_path=path)
    try:
        def tracked() -> int:
            with sb.state._db_lock:   # not amid the state file's applier, whose batch is short-lived
                gc.collect()
                return len(gc.get_objects())

        pending(sb, 10)
        before = tracked()
        made = pending(sb, 2000)
        # the timer of each delivery is the one tracked object it adds
        assert tracked() - before <= 2000 + 100
        assert not any(gc.is_tracked(d) for d in made)
        assert all(not gc.is_tracked(entry) for heap in sb.timers._heaps.values() for entry in heap)
        [headed] = pending(sb, 1, headers={"X-Id": "1"})
    finally:
        sb.close()
    # read back from the state file, deliveries take the same shape, and go out with their headers
    again = Sandbox(seed=1, clock_start=DEFAULT_START, webhooks_mode="manual", state_path=path)
    try:
        gc.collect()
        assert not gc.is_tracked(again.outbox.get(made[0]["id"]))
        kept = again.outbox.get(headed["id"])
        assert kept["_headers"] == (("X-Id", "1"),)
        assert again.outbox._prepare(kept["id"])[3][5]["X-Id"] == "1"
    finally:
        again.close()


def test_a_reset_while_attempts_are_on_the_wire_leaves_the_deliveries_made_after_it_alone(tmp_path):
    # a reset restarts the id stream, so the next payment's deliveries take the ids of the ones
    # whose answers are still coming: those answers must not settle (or cancel) the new ones
    import threading
    import time
    from http.server import BaseHTTPRequestHandler

    import requests

    from simulator import create_app
    from simulator.testing import ReceiverServer, SandboxServer

    received = []

    class SlowForTheFirstPayment(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((event["type"], event["data"]["amount"]))
            if event["data"]["amount"] == 111:
                time.sleep(1.5)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    receiver = ReceiverServer(("127.0.0.1", 0), SlowForTheFirstPayment)
    threading.Thread(target=receiver.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    config = {"seed": 9, "clock": {"start": DEFAULT_START}, "webhooks": "auto", "providers": {"checkout": {
        "webhook_url": f"http://127.0.0.1:{receiver.server_port}/cko", "webhook_signing_key": "k"}}}
    path = str(tmp_path / "state.db")
    auth = {"Authorization": "Bearer sk_sbox_" + "r" * 27}
    card = {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030, "cvv": "100"}
    try:
        with SandboxServer(config, state_path=path) as server:
            pay = lambda amount: requests.post(f"{server.url}/checkout/payments", headers=auth, timeout=10, json={
                "source": card, "amount": amount, "currency": "EUR"}).json()["id"]
            first = pay(111)
            deadline = time.monotonic() + 5
            while not received and time.monotonic() < deadline:
                time.sleep(0.01)
            assert received, "the first payment's event never reached the receiver"
            assert server.admin("POST", "/reset").status_code == 200
            assert pay(222) == first   # same seed after a reset: same ids, deliveries' too
            deadline = time.monotonic() + 10
            while sum(amount == 222 for _, amount in received) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sorted(t for t, amount in received if amount == 222) == ["payment_approved", "payment_captured"]
            kept = server.webhooks()
            assert [(json.loads(d["payload"])["data"]["amount"], d["status"]) for d in kept] == [(222, "delivered")] * 2
    finally:
        receiver.shutdown()
        receiver.server_close()
    # and the state file holds the deliveries made after the reset, not the answers to the old ones
    app = create_app({**config, "webhooks": "manual"}, state_path=path)
    try:
        kept = app.extensions["sandbox"].outbox.list()
        assert [(json.loads(d["payload"])["data"]["amount"], d["status"]) for d in kept] == [(222, "delivered")] * 2
    finally:
        app.extensions["sandbox"].close()
