"""Shared pieces for the ZafaPay tests: a plain `requests` client, form submission, signatures."""
from __future__ import annotations

import hashlib
import hmac
import json
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest
import requests

from simulator.testing import DEFAULT_START, SandboxServer, WebhookReceiver

KEY = "zp_test_merchant_one_0001"
OTHER_KEY = "zp_test_merchant_two_0002"
SECRET = "whsec_test_5f2a9c1e7d"


class ZafaPay:
    """What a merchant writes against https://api.sandbox.zafapay.com: Bearer key, JSON."""

    def __init__(self, base: str, key: str = KEY):
        self.base = base.rstrip("/") + "/zafapay"
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"Bearer {key}"

    def post(self, path, body=None, **kw):
        return self.http.post(self.base + path, json=body, timeout=30, **kw)

    def get(self, path, **kw):
        return self.http.get(self.base + path, timeout=30, **kw)

    def pay(self, **body):
        body.setdefault("amount", 10.00)
        body.setdefault("currency", "usd")
        return self.post("/v1/payments", body)

    def cards(self, customer_id):
        resp = self.get(f"/v1/customers/{customer_id}/payment-methods")
        assert resp.status_code == 200, resp.text
        return resp.json()["payment_methods"]


def verify_signature(body: bytes, signature: str, secret: str = SECRET) -> bool:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature or "")


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms, self._current = [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._current = {"action": a.get("action"), "method": (a.get("method") or "get").lower(),
                             "id": a.get("id"), "inputs": {}, "buttons": []}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and a.get("name"):
            self._current["inputs"][a["name"]] = a.get("value") or ""
        elif tag == "button" and self._current is not None and a.get("name"):
            self._current["buttons"].append((a["name"], a.get("value")))

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def forms(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def submit_page(http: requests.Session, page_url: str, html: str, button: str, fields: dict | None = None,
                **kw) -> requests.Response:
    """Press a button of the page's only form, as a browser without JavaScript does."""
    (form,) = forms(html)
    assert form["method"] == "post"
    data = dict(form["inputs"])
    data.update(fields or {})
    name, value = next((n, v) for n, v in form["buttons"] if v == button)
    data[name] = value
    return http.post(urljoin(page_url, form["action"]), data=data, timeout=30, **kw)


def pay_on_page(payment_url: str, button: str = "pay", fields: dict | None = None, **kw) -> requests.Response:
    browser = requests.Session()
    browser.trust_env = False
    page = browser.get(payment_url, timeout=30)
    assert page.status_code == 200, page.text
    return submit_page(browser, payment_url, page.text, button, fields, **kw)


def webhooks_of(receiver: WebhookReceiver, event: str | None = None) -> list[tuple[dict, dict]]:
    out = []
    for r in receiver.requests:
        body = json.loads(r["body"])
        if event is None or body["event"] == event:
            out.append((body, r))
    return out


def config(receiver_url: str | None = None, **zafapay) -> dict:
    section = {"webhook_secret": SECRET, **zafapay}
    if receiver_url:
        section["webhook_url"] = receiver_url + "/zafapay"
    return {"seed": 1, "clock": {"start": DEFAULT_START}, "webhooks": "manual", "providers": {"zafapay": section}}


@pytest.fixture
def zp(receiver):
    """A sandbox whose ZafaPay webhooks go to a loopback receiver, signed with a known whsec_."""
    srv = SandboxServer(config(receiver.url)).start()
    yield srv
    srv.stop()


@pytest.fixture
def api(zp):
    return ZafaPay(zp.url)


def initial_payment_saved(api: ZafaPay, zp: SandboxServer, customer_id: str, **card) -> str:
    """Initial payment with save_card completed through /_sandbox/hosted; returns the pmi_."""
    resp = api.pay(customer_id=customer_id, save_card=True)
    assert resp.status_code == 201, resp.text
    action = {"outcome": "approve"}
    if card:
        action["card"] = card
    done = zp.hosted("zafapay", resp.json()["id"], **action)
    assert done.status_code == 200, done.text
    pmi = done.json()["payment_method_id"]
    assert pmi.startswith("pmi_")
    return pmi
