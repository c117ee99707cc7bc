"""Helpers for the scenario tests: the official checkout-sdk pointed at a sandbox, and probes."""
import os
import warnings

import requests
from checkout_sdk.checkout_sdk import CheckoutSdk
from checkout_sdk.environment import Environment
from checkout_sdk.payments.payments import (PaymentRequest, PaymentRequestCardSource, PaymentRequestIdSource,
                                            ThreeDsRequest)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIBRARY = os.path.join(ROOT, "scenarios")
KEY = "sk_sbox_" + "s" * 27
OTHER_KEY = "sk_sbox_" + "t" * 27
AUTH = {"Authorization": "Bearer " + KEY}
START = "2026-01-01T00:00:00Z"
MANUAL = {"seed": 1, "clock": {"start": START}, "webhooks": "manual"}


def library(name: str) -> str:
    return os.path.join(LIBRARY, name)


class _TimeoutSession(requests.Session):
    """A client with a timeout, as production clients have; loopback only, never via a proxy."""

    def __init__(self, timeout):
        super().__init__()
        self.trust_env = False
        self.timeout = timeout

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        return super().request(*args, **kwargs)


class _Client:
    def __init__(self, timeout):
        self.session = _TimeoutSession(timeout)

    def get_client(self):
        return self.session


def sdk(base_url: str, secret_key: str = KEY, timeout: float = 30):
    """checkout-sdk 4.8.1 against the sandbox (fact sheet 16.6)."""
    base = base_url.rstrip("/") + "/checkout/"
    env = Environment(base_uri=base, authorization_uri=base + "connect/token", files_uri=base,
                      transfers_uri=base, balances_uri=base, forward_uri=base, identity_uri=base,
                      is_sandbox=True)
    builder = CheckoutSdk.builder().secret_key(secret_key).environment(env).http_client_builder(_Client(timeout))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return builder.use_legacy_domain().build()


def card(number="4242424242424242", month=12, year=2030):
    src = PaymentRequestCardSource()
    src.number, src.expiry_month, src.expiry_year, src.cvv = number, month, year, "100"
    return src


def stored(src_id):
    src = PaymentRequestIdSource()
    src.id = src_id
    return src


def payment(source, amount=5000, merchant_initiated=False, previous_payment_id=None, capture=None,
            three_ds=None, payment_type="Recurring"):
    req = PaymentRequest()
    req.source, req.amount, req.currency, req.payment_type = source, amount, "EUR", payment_type
    req.merchant_initiated = merchant_initiated
    if previous_payment_id:
        req.previous_payment_id = previous_payment_id
    if capture is not None:
        req.capture = capture
    if three_ds is not None:
        t = ThreeDsRequest()
        for k, v in three_ds.items():
            setattr(t, k, v)
        req.three_ds = t
    return req


def cit(api, **kw):
    """An initial customer-initiated payment without 3DS (card stored for later MITs)."""
    return api.payments.request_payment(payment(kw.pop("source", None) or card(), **kw))


def mit(api, src_id, previous_payment_id, **kw):
    return api.payments.request_payment(payment(stored(src_id), merchant_initiated=True,
                                                previous_payment_id=previous_payment_id, **kw))


def journal_rules(server_url: str, method: str = None, path_prefix: str = None) -> list:
    entries = requests.get(server_url + "/_sandbox/requests", timeout=10).json()["requests"]
    return [(e["method"], e["path"], e["status"], e["rules"]) for e in entries
            if (method is None or e["method"] == method) and (path_prefix is None or e["path"].startswith(path_prefix))]
