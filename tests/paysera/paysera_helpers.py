"""A Paysera MAC client written from the fact sheet (section 3), plus fixtures for the tests.

The signer is deliberately independent of the simulator's code: it is checked against the fact
sheet's test vectors in test_paysera_mac.py and then used for every request.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from urllib.parse import quote, urlsplit

import pytest
import requests

from simulator.testing import SandboxServer, WebhookReceiver

DEFAULT_ID = "sandbox-mac-id"
DEFAULT_KEY = "sandbox-mac-key-change-me-0123456789"
_NONCE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in '"\\')


def make_nonce(rng=random) -> str:
    """Like Paysera's libraries: 32 printable chars, commas, spaces and '=' included."""
    return "".join(rng.choice(_NONCE_CHARS) for _ in range(32))


def normalized(ts, nonce, method, uri, host, port, ext="") -> str:
    return f"{ts}\n{nonce}\n{method.upper()}\n{uri}\n{host.lower()}\n{port}\n{ext}\n"


def mac(key: str, text: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), text.encode(), hashlib.sha256).digest()).decode()


def body_hash(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def ext_for(body: bytes, extra: dict | None = None) -> str:
    """PHP http_build_query: '+', '/', '=' percent-encoded, space as '+'."""
    parts = []
    if body:
        parts.append(("body_hash", body_hash(body)))
    parts.extend((extra or {}).items())
    return "&".join(f"{quote(k, safe='')}={quote(str(v), safe='').replace('%20', '+')}" for k, v in parts)


def header(mac_id, key, method, url, body=b"", *, ts=None, nonce=None, ext=None, sep=", ") -> str:
    parts = urlsplit(url)
    uri = parts.path + (f"?{parts.query}" if parts.query else "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    ts = str(int(time.time()) if ts is None else ts)
    nonce = make_nonce() if nonce is None else nonce
    ext = ext_for(body) if ext is None else ext
    value = mac(key, normalized(ts, nonce, method, uri, parts.hostname, port, ext))
    fields = [("id", mac_id), ("ts", ts), ("nonce", nonce), ("mac", value)]
    if ext:
        fields.append(("ext", ext))
    return "MAC " + sep.join(f'{k}="{v}"' for k, v in fields)


class PayseraClient:
    """What a merchant's own integration does: JSON bodies, MAC-signed with real time."""

    def __init__(self, server_url: str, mac_id: str = DEFAULT_ID, mac_key: str = DEFAULT_KEY):
        self.root = server_url.rstrip("/") + "/paysera"
        self.mac_id, self.mac_key = mac_id, mac_key
        self.http = requests.Session()
        self.http.trust_env = False

    def request(self, method, path, payload=None, *, raw: bytes | None = None, params=None, sign=None,
                body_override: bytes | None = None):
        body = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        req = requests.Request(method, self.root + path, data=body or None, params=params,
                               headers={"Content-Type": "application/json;charset=utf-8"} if body else {})
        prepared = self.http.prepare_request(req)
        url = prepared.url
        auth = header(self.mac_id, self.mac_key, method, url, body, **(sign or {}))
        prepared.headers["Authorization"] = auth
        if body_override is not None:          # what a tampering proxy would do after signing
            prepared.body = body_override
            prepared.headers["Content-Length"] = str(len(body_override))
        return self.http.send(prepared, timeout=30)

    def create(self, **fields):
        return self.request("POST", "/checkout/rest/v1/payment-requests", fields)

    def get(self, pr_id):
        return self.request("GET", f"/checkout/rest/v1/payment-requests/{pr_id}")

    def authorize(self, pr_id, token):
        return self.request("PUT", f"/checkout/rest/v1/payment-requests/{pr_id}/authorize", {"token": token})

    def capture(self, pr_id, payload=None):
        return self.request("PUT", f"/checkout/rest/v1/payment-requests/{pr_id}/capture", payload)

    def cancel(self, pr_id):
        return self.request("PUT", f"/checkout/rest/v1/payment-requests/{pr_id}/cancel")

    def notification(self, nid):
        return self.request("GET", f"/notification/rest/v1/notifications/{nid}")

    def notifications(self, **params):
        return self.request("GET", "/notification/rest/v1/notifications", params=params)

    def read(self, nid):
        return self.request("PUT", f"/notification/rest/v1/notifications/{nid}/read")


def first_payment(callback_url, **extra):
    body = {
        "business_id": "LcKB4rs-pNVLgQKxZTaGzfZRAuiQPuyE",
        "order_id": "SUB_12345_MONTH_1",
        "price": {"amount": "10.00", "currency": "EUR"},
        "description": "Monthly subscription - January",
        "method_key": "card",
        "payer": {"email": "customer@example.com"},
        "locale": "en",
        "accept_url": "https://shop.example/accept",
        "cancel_url": "https://shop.example/cancel",
        "callback_url": callback_url,
        "token_strategy": "required",
    }
    body.update(extra)
    return body


def recurring_payment(callback_url, order_id="SUB_12345_MONTH_2", amount=999):
    """The seed guide's token-charge request, verbatim apart from the callback."""
    return {
        "business_id": "LcKB4rs-pNVLgQKxZTaGzfZRAuiQPuyE",
        "order_id": order_id,
        "price": {"amount": amount, "currency": "EUR"},
        "description": "Monthly subscription - February",
        "method_key": "card",
        "payer": {"email": "customer@example.com"},
        "locale": "en",
        "callback_url": callback_url,
    }


def notification_ids(receiver) -> list[str]:
    return [json.loads(r["body"])["notification_id"] for r in receiver.requests]


@pytest.fixture
def client(server):
    return PayseraClient(server.url)


@pytest.fixture
def two_tenants():
    srv = SandboxServer({"seed": 3, "clock": {"start": "2026-01-01T00:00:00Z"}, "webhooks": "manual",
                         "providers": {"paysera": {"credentials": {"shop-a": "key-a-secret",
                                                                   "shop-b": "key-b-secret"}}}}).start()
    yield srv
    srv.stop()


def hosted_token(server, client, receiver, **extra) -> tuple[str, str]:
    """Create a tokenised first payment and pay it through the sandbox's CI hosted action."""
    pr = client.create(**first_payment(receiver.url + "/cb", **extra)).json()
    done = server.hosted("paysera", pr["id"], outcome="approve")
    assert done.status_code == 200, done.text
    return pr["id"], done.json()["payment_request"].get("issued_token")
