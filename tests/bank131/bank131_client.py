"""A signed Bank 131 client for the tests, written after the official PHP SDK's scheme:
serialise the body once, sign exactly those bytes (RSA PKCS#1 v1.5, SHA-256), Base64 into
X-PARTNER-SIGN, send the same bytes. Like PHP's json_encode it escapes slashes ("https:\\/\\/"),
which is why the sandbox must verify the raw bytes rather than re-serialise."""
from __future__ import annotations

import base64
import copy
import functools
import itertools
import json

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from simulator.testing import WebhookReceiver


_KEYS: list = []
_next_key = itertools.count()


def new_key():
    """A 2048-bit RSA key different from the ones handed out just before it.

    Generating one costs ~0.1 s, and every test asks for at least one; a small pool handed out in
    turn keeps the keys a test asks for distinct (no test uses more than a few at once), while each
    test runs against its own fresh server, so reusing a key in a later test shares nothing."""
    i = next(_next_key) % 4
    if len(_KEYS) <= i:
        _KEYS.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEYS[i]


def public_pem(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def php_json(body) -> bytes:
    if body is None:
        return b"[]"   # the SDK's request without fields: an empty PHP array
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).replace("/", "\\/").encode()


def sign(key, raw: bytes) -> str:
    return base64.b64encode(key.sign(raw, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(public_key_pem: str, raw: bytes, signature_b64: str) -> bool:
    key = serialization.load_pem_public_key(public_key_pem.encode())
    try:
        key.verify(base64.b64decode(signature_b64), raw, padding.PKCS1v15(), hashes.SHA256())
        return True
    except InvalidSignature:
        return False


class Bank131Client:
    def __init__(self, base_url: str, project: str, key, version: int = 1):
        self.base = base_url.rstrip("/") + "/bank131"
        self.project = project
        self.key = key
        self.version = version
        self.http = requests.Session()
        self.http.trust_env = False

    def raw(self, path: str, raw: bytes, *, signature: str | None = None, headers: dict | None = None):
        h = {"Content-Type": "application/json", "Accept": "application/json",
             "X-PARTNER-PROJECT": self.project,
             "X-PARTNER-SIGN": signature if signature is not None else sign(self.key, raw)}
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        return self.http.post(self.base + path, data=raw, headers=h, timeout=30)

    def post(self, path: str, body=None, **kw):
        return self.raw(path, php_json(body), **kw)

    def session(self, method: str, body=None, version: int | None = None, **kw):
        return self.post(f"/api/v{version or self.version}/session/{method}", body, **kw)

    # the seed guide's calls
    def init_payment(self, body, **kw):
        return self.session("init/payment", body, **kw)

    def confirm(self, session_id, **kw):
        return self.session("confirm", {"session_id": session_id}, **kw)

    def status(self, session_id, **kw):
        return self.session("status", {"session_id": session_id}, **kw)

    def token_info(self, token):
        return self.post("/api/v1/token/info", {"type": "recurrent_token", "recurrent_token": {"token": token}})

    def disable(self, token):
        return self.post("/api/v1/recurrent/disable", {"recurrent": {"token": token}})


CARD = {"type": "card", "card": {"type": "bank_card", "bank_card": {
    "number": "4242424242424242", "expiration_month": "01", "expiration_year": "22", "security_code": "087"}}}


def card(number: str) -> dict:
    return {"type": "card", "card": {"type": "bank_card", "bank_card": {
        "number": number, "expiration_month": "12", "expiration_year": "30", "security_code": "123"}}}


def first_payment(recurrent=True, details=None, amount=10000) -> dict:
    body = {"payment_details": copy.deepcopy(details or CARD), "amount_details": {"amount": amount, "currency": "rub"},
            "customer": {"reference": "lucky"}}
    if recurrent is not None:
        body["payment_options"] = {"recurrent": recurrent}
    return body


def token_charge(token: str, amount=10000, **recurrent) -> dict:
    return {"payment_details": {"type": "recurrent", "recurrent": {"token": token, **recurrent}},
            "amount_details": {"amount": amount, "currency": "rub"}, "customer": {"reference": "lucky"}}


class Bank:
    """A registered project on a running sandbox, with its webhook receiver and the bank's key."""

    def __init__(self, server, receiver, project="my-project"):
        self.server = server
        self.receiver = receiver
        self.key = new_key()
        resp = server.admin("PUT", "/config", json={"providers": {"bank131": {"projects": {
            project: {"public_key": public_pem(self.key), "webhook_url": receiver.url + "/b131"}}}}})
        assert resp.status_code == 200, resp.text
        self.client = Bank131Client(server.url, project, self.key)

    @functools.cached_property
    def bank_pem(self) -> str:
        # fetched when a webhook is first checked: the sandbox makes its RSA key on first use, so
        # a test that receives no webhook skips that cost
        return self.server.admin("GET", "/keys/bank131").text

    def webhooks(self):
        """Flush the outbox and return the verified webhook bodies received so far."""
        self.server.flush()
        out = []
        for r in self.receiver.requests:
            assert verify(self.bank_pem, r["body"], r["headers"]["X-PARTNER-SIGN"]), "bad webhook signature"
            out.append(json.loads(r["body"]))
        return out

    def last_webhook(self, event_type=None):
        hooks = [h for h in self.webhooks() if event_type is None or h["type"] == event_type]
        assert hooks, f"no {event_type} webhook"
        return hooks[-1]

    def pay_and_confirm(self, body):
        resp = self.client.init_payment(body)
        assert resp.status_code == 200, resp.text
        sid = resp.json()["session"]["id"]
        assert self.last_webhook("ready_to_confirm")["session"]["id"] == sid
        resp = self.client.confirm(sid)
        assert resp.status_code == 200, resp.text
        return sid, resp.json()["session"]


@pytest.fixture
def bank(server):
    rcv = WebhookReceiver().start()
    yield Bank(server, rcv)
    rcv.stop()
