"""The outbox never drops an event it accepted (issue 10, defect 1): memory is bounded by evicting
settled deliveries only, and a full outbox refuses the write before anything is created."""
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler

import requests

from simulator.core.runtime import Sandbox
from simulator.testing import DEFAULT_START, ReceiverServer, SandboxServer, WebhookReceiver

KEY = {"Authorization": "Bearer sk_sbox_" + "a" * 27}
BODY = {"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
        "currency": "EUR", "amount": 1000}


class Receiver:
    """A receiver on a socket bound before it listens, so it can be down first (connections
    refused, the port held from other test processes) and up later on the same port."""

    def __init__(self, bound: socket.socket):
        self.events = set()
        lock = threading.Lock()
        events = self.events

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    events.add(json.loads(body)["id"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ReceiverServer(bound.getsockname(), Handler, bind_and_activate=False)
        self._server.socket.close()
        self._server.socket = bound
        self._server.server_activate()
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


def enqueue(sb, url, n):
    return [sb.outbox.enqueue(provider="none", tenant="t", event_type="e", url=url, body=b"{}",
                              schedule=[])[0]["id"] for _ in range(n)]


def test_only_settled_deliveries_are_evicted_oldest_first():
    receiver = WebhookReceiver(status=500).start()
    sb = Sandbox(seed=1, clock_start=DEFAULT_START, webhooks_mode="manual")
    try:
        sb.outbox.limit = 3
        failing = enqueue(sb, receiver.url, 5)
        sb.outbox.flush()
        # five dead-on-first-failure deliveries settle; the limit keeps the newest three
        assert [d["id"] for d in sb.outbox.list()] == failing[2:]
        pending = enqueue(sb, receiver.url, 6)   # more unsettled ones than the limit: all kept
        assert [d["id"] for d in sb.outbox.list()] == failing[2:] + pending
        receiver.status = 200
        sb.outbox.flush()
        assert [d["id"] for d in sb.outbox.list()] == pending[3:]
        assert len(receiver.requests) == 11
    finally:
        sb.close()
        receiver.stop()


def test_a_full_outbox_refuses_the_write_before_creating_anything(receiver):
    with SandboxServer({"seed": 1, "clock": {"start": DEFAULT_START}, "webhooks": "manual",
                        "providers": {"checkout": {"webhook_url": receiver.url}}}) as srv:
        srv.sandbox.outbox.max_pending = 2
        assert requests.post(srv.url + "/checkout/payments", json=BODY, headers=KEY, timeout=10).status_code == 201
        objects = srv.sandbox.store.count()
        refused = requests.post(srv.url + "/checkout/payments", json=BODY, headers=KEY, timeout=10)
        assert refused.status_code == 503 and refused.json()["error_type"] == "service_unavailable"
        assert srv.sandbox.store.count() == objects and len(srv.webhooks()) == 2
        srv.flush()   # once delivered, the outbox has room again
        assert requests.post(srv.url + "/checkout/payments", json=BODY, headers=KEY, timeout=10).status_code == 201


def test_receiver_down_for_2600_payments_then_every_event_arrives():
    """Issue 10's reproduction: ~5,200 events while the receiver is down, 5,000 used to arrive."""
    bound = socket.socket()
    bound.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{bound.getsockname()[1]}/cko"
    with SandboxServer({"seed": 1, "clock": {"start": DEFAULT_START}, "webhooks": "manual",
                        "providers": {"checkout": {"webhook_url": url, "webhook_signing_key": "k"}}}) as srv:
        local = threading.local()

        def create(_):
            # in process: what is measured is the outbox, and 2,600 payments over HTTP spent most of
            # the test's time in the client
            client = getattr(local, "client", None) or srv.app.test_client()
            local.client = client
            return client.post("/checkout/payments", json=BODY, headers=KEY).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(create, range(2600))) == {201}
        created = {json.loads(d["payload"])["id"] for d in srv.sandbox.outbox.list()}
        assert len(created) == 5200
        attempted = srv.flush()   # the receiver is down: every first attempt is refused
        assert len(attempted) == 5200 and {d["status"] for d in attempted} == {"failed"}
        receiver = Receiver(bound)
        try:
            srv.advance("PT20M")
            assert receiver.events == created
            assert {d["status"] for d in srv.sandbox.outbox.list()} == {"delivered"}
        finally:
            receiver.stop()
