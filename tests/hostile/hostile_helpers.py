"""Signed clients for every provider of one sandbox, sending any bytes the way that provider's
users do (checkout-sdk's key header, a fresh Gr4vy JWT, Paysera's MAC, Bank 131's RSA signature,
ZafaPay's bearer key), and the config that registers their keys."""
from __future__ import annotations

import json
import os
import sys

import requests

HERE = os.path.dirname(__file__)
for _sibling in ("checkout", "gr4vy", "paysera", "bank131", "zafapay"):
    sys.path.insert(0, os.path.join(HERE, "..", _sibling))

from bank131_client import new_key as new_rsa_key, public_pem, sign  # noqa: E402,F401
from gr4vy import auth as gr4vy_auth  # noqa: E402
from gr4vy_helpers import new_key as new_ec_key  # noqa: E402,F401
from paysera_helpers import header as paysera_mac  # noqa: E402

from simulator.testing import DEFAULT_START, SandboxServer  # noqa: E402

CKO_KEY = "sk_sbox_" + "a" * 27
CKO_PUBLIC = "pk_sbox_" + "a" * 27
PAYSERA_ID, PAYSERA_KEY = "hostile-mac-id", "hostile-mac-key-0123456789"
B131_PROJECT = "hostile-project"
ZP_KEY = "zp_test_hostile_0001"
ZP_SECRET = "whsec_hostile"
PAN = "4242424242424242"
CVV = "737"


class Clients:
    """Signed raw requests to every provider of one sandbox."""

    def __init__(self, server: SandboxServer, gr4vy_private: str, b131_key):
        self.server = server
        self.url = server.url
        self.gr4vy_private = gr4vy_private
        self.b131_key = b131_key
        self.http = requests.Session()
        self.http.trust_env = False

    def send(self, provider: str, method: str, path: str, body: bytes = b"", *,
             content_type: str | None = "application/json", params: dict | None = None) -> requests.Response:
        """``path`` is below the provider's mount, query string included if any."""
        url = f"{self.url}/{provider}{path}"
        headers = {"Content-Type": content_type} if content_type and body else {}
        if provider == "checkout":
            headers["Authorization"] = CKO_PUBLIC if path.startswith("/tokens") else CKO_KEY
        elif provider == "gr4vy":
            headers["Authorization"] = "Bearer " + gr4vy_auth.get_token(self.gr4vy_private)
            headers["X-GR4VY-MERCHANT-ACCOUNT-ID"] = "default"
        elif provider == "zafapay":
            headers["Authorization"] = f"Bearer {ZP_KEY}"
        elif provider == "bank131":
            headers["X-PARTNER-PROJECT"] = B131_PROJECT
            headers["X-PARTNER-SIGN"] = sign(self.b131_key, body)
        req = requests.Request(method, url, data=body or None, headers=headers, params=params)
        prepared = self.http.prepare_request(req)
        if provider == "paysera":
            prepared.headers["Authorization"] = paysera_mac(PAYSERA_ID, PAYSERA_KEY, method, prepared.url, body)
        return self.http.send(prepared, timeout=30, allow_redirects=False)

    def json(self, provider: str, method: str, path: str, payload, **kw) -> requests.Response:
        return self.send(provider, method, path, json.dumps(payload).encode(), **kw)


def config(receiver_url: str, gr4vy_public: str, b131_public: str) -> dict:
    return {"seed": 7, "clock": {"start": DEFAULT_START}, "webhooks": "manual", "providers": {
        "checkout": {"webhook_url": receiver_url + "/cko", "webhook_signing_key": "k"},
        "gr4vy": {"public_keys": [gr4vy_public], "webhook_url": receiver_url + "/gr4vy", "webhook_secret": "s"},
        "paysera": {"credentials": {PAYSERA_ID: PAYSERA_KEY}},
        "bank131": {"projects": {B131_PROJECT: {"public_key": b131_public, "webhook_url": receiver_url + "/b131"}}},
        "zafapay": {"api_keys": [ZP_KEY], "webhook_url": receiver_url + "/zp", "webhook_secret": ZP_SECRET},
    }}


def object_keys(server: SandboxServer) -> set:
    """Every stored object's (provider, kind, id)."""
    store = server.sandbox.store
    with store.lock:
        return {(p, k, i) for p, t, k, _ in store.groups() for i, _ in store.items(p, k, t)}
