"""Fault injection (issue 10): for each provider, a seeded load of writes against a real
``python run.py --seed N --state F``, killed with SIGKILL at seeded random points and restarted on
the same file. Afterwards every write that got a 2xx is there with the same body, every idempotent
replay gets the original answer, every pending webhook is delivered at its scheduled virtual time,
and no id was handed out twice."""
from __future__ import annotations

import json
import random
import threading

import requests
import yaml
from bank131_client import new_key as rsa_key, php_json, public_pem, sign
from gr4vy import auth
from gr4vy_helpers import CARD as GR4VY_CARD, new_key as ec_key
from paysera_helpers import DEFAULT_ID, DEFAULT_KEY, first_payment, header as paysera_mac

from simulator.admin.timeline import masked_payload
from simulator.testing import DEFAULT_START, ServerProcess, WebhookReceiver, free_port, refused_port

CYCLES = 3   # killed runs before the last, checked one


class Checkout:
    key = "sk_sbox_" + "r" * 27

    def __init__(self, hook_url):
        self.config = {"webhook_url": hook_url, "webhook_signing_key": "k"}

    def send(self, http, url, method, path, body=None, idem=None):
        headers = {"Authorization": f"Bearer {self.key}"}
        if idem:
            headers["Cko-Idempotency-Key"] = idem
        return http.request(method, url + "/checkout" + path, json=body, headers=headers, timeout=10)

    def create(self, rng, n):
        body = {"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
                "amount": rng.randrange(100, 10000), "currency": "EUR", "capture": rng.random() < 0.5,
                "reference": f"order-{n}"}
        return "POST", "/payments", body

    def created_id(self, resp):
        return resp.json()["id"]

    def follow(self, http, url, obj_id, rng):
        kind = rng.choice(["captures", "refunds", "voids"])
        return self.send(http, url, "POST", f"/payments/{obj_id}/{kind}", {"amount": 50} if kind != "voids" else {})

    def get(self, http, url, obj_id):
        return self.send(http, url, "GET", f"/payments/{obj_id}")


class Gr4vy:
    def __init__(self, hook_url):
        self.private, public = ec_key()
        self.config = {"public_keys": [public], "webhook_url": hook_url}

    def send(self, http, url, method, path, body=None, idem=None):
        headers = {"Authorization": "Bearer " + auth.get_token(self.private),
                   "x-gr4vy-merchant-account-id": "default"}
        if idem:
            headers["idempotency-key"] = idem
        return http.request(method, url + "/gr4vy" + path, json=body, headers=headers, timeout=10)

    def create(self, rng, n):
        return "POST", "/transactions", {"amount": rng.randrange(100, 10000), "currency": "USD",
                                         "payment_method": GR4VY_CARD, "intent": "authorize",
                                         "external_identifier": f"order-{n}"}

    def created_id(self, resp):
        return resp.json()["id"]

    def follow(self, http, url, obj_id, rng):
        if rng.random() < 0.5:
            return self.send(http, url, "POST", f"/transactions/{obj_id}/capture", {})
        return self.send(http, url, "POST", f"/transactions/{obj_id}/refunds", {"amount": 50})

    def get(self, http, url, obj_id):
        return self.send(http, url, "GET", f"/transactions/{obj_id}")


class Paysera:
    """Paysera has no idempotency key: its writes are checked, replays are not."""

    def __init__(self, hook_url):
        self.hook_url = hook_url
        self.config = {}

    def send(self, http, url, method, path, body=None, idem=None):
        full = url + "/paysera" + path
        raw = json.dumps(body).encode() if body is not None else b""
        headers = {"Authorization": paysera_mac(DEFAULT_ID, DEFAULT_KEY, method, full, raw)}
        if raw:
            headers["Content-Type"] = "application/json;charset=utf-8"
        return http.request(method, full, data=raw or None, headers=headers, timeout=10)

    def create(self, rng, n):
        return "POST", "/checkout/rest/v1/payment-requests", first_payment(self.hook_url, order_id=f"ORDER-{n}")

    def created_id(self, resp):
        return resp.json()["id"]

    def follow(self, http, url, obj_id, rng):
        if rng.random() < 0.7:
            return http.post(f"{url}/_sandbox/hosted/paysera/{obj_id}", json={"outcome": "approve"}, timeout=10)
        return self.send(http, url, "PUT", f"/checkout/rest/v1/payment-requests/{obj_id}/cancel")

    def get(self, http, url, obj_id):
        return self.send(http, url, "GET", f"/checkout/rest/v1/payment-requests/{obj_id}")


class Bank131:
    """A reused idempotency key is answered ``idempotency_key_already_exists``, never run twice."""

    def __init__(self, hook_url):
        self.rsa = rsa_key()
        self.config = {"projects": {"reliable": {"public_key": public_pem(self.rsa), "webhook_url": hook_url}}}

    def send(self, http, url, method, path, body=None, idem=None):
        raw = php_json(body)
        headers = {"Content-Type": "application/json", "X-PARTNER-PROJECT": "reliable",
                   "X-PARTNER-SIGN": sign(self.rsa, raw)}
        if idem:
            headers["X-PARTNER-IDEMPOTENCY-KEY"] = idem
        return http.request(method, url + "/bank131" + path, data=raw, headers=headers, timeout=10)

    def create(self, rng, n):
        return "POST", "/api/v1/session/init/payment", {
            "payment_details": {"type": "card", "card": {"type": "bank_card", "bank_card": {
                "number": "4242424242424242", "expiration_month": "12", "expiration_year": "30",
                "security_code": "123"}}},
            "amount_details": {"amount": rng.randrange(100, 10000), "currency": "rub"},
            "customer": {"reference": f"customer-{n}"}}

    def created_id(self, resp):
        return resp.json()["session"]["id"]

    def follow(self, http, url, obj_id, rng):
        return self.send(http, url, "POST", "/api/v1/session/confirm", {"session_id": obj_id})

    def get(self, http, url, obj_id):
        return self.send(http, url, "POST", "/api/v1/session/status", {"session_id": obj_id})


class ZafaPay:
    key = "zp_test_reliability_0001"

    def __init__(self, hook_url):
        self.config = {"webhook_url": hook_url, "webhook_secret": "whsec_reliable"}

    def send(self, http, url, method, path, body=None, idem=None):
        headers = {"Authorization": f"Bearer {self.key}"}
        if idem:
            headers["Idempotency-Key"] = idem
        return http.request(method, url + "/zafapay" + path, json=body, headers=headers, timeout=10)

    def create(self, rng, n):
        return "POST", "/v1/payments", {"amount": rng.randrange(100, 10000) / 100, "currency": "usd",
                                        "customer_id": f"customer-{n}", "save_card": True,
                                        "external_id": f"order-{n}"}

    def created_id(self, resp):
        return resp.json()["id"]

    def follow(self, http, url, obj_id, rng):
        if rng.random() < 0.6:
            return http.post(f"{url}/_sandbox/hosted/zafapay/{obj_id}", json={"outcome": "approve"}, timeout=10)
        return self.send(http, url, "POST", f"/v1/payments/{obj_id}/refund", {"amount": 0.5})

    def get(self, http, url, obj_id):
        return self.send(http, url, "GET", f"/v1/payments/{obj_id}")


class Book:
    """What the client saw answered with a 2xx, to hold the restarted server to."""

    def __init__(self):
        self.bodies: dict[str, bytes | None] = {}   # object id -> last body read after a 2xx write
        self.created: list[str] = []                 # ids of 2xx creates, in order
        self.answers: dict[str, tuple] = {}          # idempotency key -> (request, status, body)
        self.count = 0


def load(driver, url, rng, book, receiver):
    """Writes until the server dies under them; only answers that arrived count."""
    http = requests.Session()
    http.trust_env = False
    obj_id = None
    try:
        while True:
            book.count += 1
            obj_id = None
            if book.created and rng.random() < 0.4:
                obj_id = rng.choice(book.created)
                resp = driver.follow(http, url, obj_id, rng)
            else:
                request = driver.create(rng, book.count)
                idem = f"key-{book.count}"
                resp = driver.send(http, url, *request, idem=idem)
                if resp.ok:
                    obj_id = driver.created_id(resp)
                    book.created.append(obj_id)
                    book.answers[idem] = (request, resp.status_code, resp.content)
            if resp.ok:
                book.bodies[obj_id] = None    # there, whatever happens to the read below
                seen = driver.get(http, url, obj_id)
                assert seen.status_code == 200, seen.text
                book.bodies[obj_id] = seen.content
            if book.count % 7 == 0:           # attempts that fail now and leave retries scheduled
                assert http.post(url + "/_sandbox/webhooks/flush", timeout=10).status_code == 200
    except requests.RequestException:
        # a write cut off by the kill may or may not have happened: its object must exist, as it was or changed
        if obj_id in book.bodies:
            book.bodies[obj_id] = None


DRIVERS = [Checkout, Gr4vy, Paysera, Bank131, ZafaPay]


def check(driver, book, http, url):
    """Everything the client saw answered is there, replays replay, nothing ran twice."""
    name = type(driver).__name__
    assert len(book.created) >= 3 and book.answers, (name, book.count)
    assert len(set(book.created)) == len(book.created), f"{name}: an id was handed out twice"
    for obj_id, body in book.bodies.items():
        seen = driver.get(http, url, obj_id)
        assert seen.status_code == 200, (name, obj_id, seen.text)
        if body is not None:
            assert seen.content == body, (name, obj_id)
    if isinstance(driver, Paysera):
        return
    objects_before = {obj_id: driver.get(http, url, obj_id).content for obj_id in book.created}
    for idem, (request, status, body) in book.answers.items():
        again = driver.send(http, url, *request, idem=idem)
        if isinstance(driver, Bank131):
            assert again.status_code == 400, (name, idem, again.text)
            assert again.json()["error"]["code"] == "idempotency_key_already_exists"
        else:
            assert (again.status_code, again.content) == (status, body), (name, idem)
    assert {obj_id: driver.get(http, url, obj_id).content for obj_id in book.created} == objects_before, name


def test_writes_of_every_provider_survive_sigkill_and_resume_after_restart(tmp_path):
    rng = random.Random(7)
    receiver = WebhookReceiver(status=500).start()
    drivers = [cls(receiver.url + "/" + cls.__name__.lower()) for cls in DRIVERS]
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"clock": {"start": DEFAULT_START}, "webhooks": "manual",
                                   "providers": {type(d).__name__.lower(): d.config for d in drivers}}))
    args = ("--seed", "7", "--state", str(tmp_path / "state.db"), "--config", str(cfg))
    port = free_port()   # one port throughout: links in bodies carry it
    books = [Book() for _ in drivers]
    # each load draws from its own stream, so one provider's pace does not change another's choices
    streams = [random.Random(f"{rng.random()}") for _ in drivers]
    try:
        for _ in range(CYCLES):
            srv = ServerProcess(*args, port=port).wait_ready()
            workers = [threading.Thread(target=load, args=(d, srv.url, r, b, receiver))
                       for d, r, b in zip(drivers, streams, books)]
            for worker in workers:
                worker.start()
            threading.Event().wait(rng.uniform(1.0, 2.5))
            srv.kill9()
            for worker in workers:
                worker.join(timeout=30)

        srv = ServerProcess(*args, port=port).wait_ready()
        http = requests.Session()
        http.trust_env = False
        try:
            for driver, book in zip(drivers, books):
                check(driver, book, http, srv.url)

            hooks = http.get(srv.url + "/_sandbox/webhooks", timeout=10).json()["webhooks"]
            waiting = [h for h in hooks if h["status"] in ("pending", "failed")]
            assert {h["provider"] for h in waiting if h["status"] == "failed"} == {type(d).__name__.lower()
                                                                                 for d in drivers}
            receiver.status = 200
            assert http.post(srv.url + "/_sandbox/clock", json={"advance": "P2D"}, timeout=120).status_code == 200
            after = {h["id"]: h for h in http.get(srv.url + "/_sandbox/webhooks", timeout=10).json()["webhooks"]}
            # the listing shows payloads masked as the journal is: compare what was sent, masked alike
            received = {masked_payload(r["body"].decode()) for r in receiver.requests}
            for hook in waiting:   # each sent at the instant it was due when the process died
                attempt = after[hook["id"]]["attempts"][len(hook["attempts"])]
                assert attempt["at"] == hook["next_attempt_at"] and 200 <= attempt["status"] < 300, hook
                assert hook["payload"] in received
        finally:
            srv.stop()
    finally:
        receiver.stop()


def test_an_attempt_and_the_retry_it_schedules_are_one_record(tmp_path):
    # outside a request (the sender's answers, a clock advance), the delivery's record of an
    # attempt and the timer of its retry were two commits: a kill between them left a retry due at
    # an instant the delivery did not show, and the attempt unrecorded
    from datetime import timedelta

    from simulator.core.runtime import Sandbox

    with refused_port() as port:
        sb = Sandbox(seed=1, clock_start=DEFAULT_START, webhooks_mode="manual", state_path=str(tmp_path / "s.db"))
        try:
            [delivery] = sb.outbox.enqueue(provider="checkout", tenant="t", event_type="payment_approved",
                                           url=f"http://127.0.0.1:{port}/", body=b"{}",
                                           schedule=[timedelta(minutes=5)], subject="pay_1")
            batches, append = [], sb.state._append
            sb.state._append = lambda rows: (batches.append(sorted(row[1] for row, _ in rows)), append(rows))
            sb.outbox.attempt(delivery["id"])   # the receiver is down: a retry in five minutes
            assert batches == [["deliveries", "timers"]]
            sb.timers.advance(timedelta(minutes=5))   # the retry, run as a timer: one record too
            # the last attempt: recorded and its timer gone, together (the clock's rows are its own)
            assert [b for b in batches[1:] if b != ["clock"]] == [["deliveries", "timers"]]
        finally:
            sb.close()
