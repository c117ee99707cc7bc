"""Checkout.com (Unified Payments API): the Provider object."""
from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta

from flask import Response
from marshmallow import Schema, ValidationError, fields

from ...core.inputs import http_url
from ..base import Caller, Provider
from . import events
from .machine import PaymentMachine
from .routes import bp
from .testcards import RESPONSE_SUMMARIES

# NAS keys (sk_sbox_ + 27) as the SDK enforces, and legacy ABC keys (sk_test_<uuid>), sent bare.
_NAS_KEY = re.compile(r"^sk_(sbox_)?[a-z2-7]{26}[a-z2-7*#$=]$")
_ABC_KEY = re.compile(r"^sk_(test_)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# POST /tokens is the one call made with the public key (from the customer's browser).
_PUBLIC_KEY = re.compile(r"^pk_(sbox_)?[a-z2-7]{26}[a-z2-7*#$=]$|^pk_(test_)?[0-9a-f-]{36}$")


def _secret_key(value):
    # a key the SDK could never send would lock every caller out
    if not (_NAS_KEY.fullmatch(value) or _ABC_KEY.fullmatch(value)):
        raise ValidationError("not a Checkout.com secret key (sk_sbox_ + 27 characters, or sk_test_<uuid>)")


class CheckoutConfig(Schema):
    secret_keys = fields.List(fields.String(validate=_secret_key))
    webhook_url = fields.String(allow_none=True, validate=http_url)
    webhook_signing_key = fields.String(allow_none=True)
    webhook_headers = fields.Dict(keys=fields.String(), values=fields.String())
    amount_triggers = fields.Boolean()   # legacy ABC amount-suffix declines; off by default
    idempotency_ttl_hours = fields.Float()


class Checkout(Provider):
    name = "checkout"
    title = "Checkout.com"
    mount = "/checkout"
    blueprint = bp
    config_schema = CheckoutConfig
    secret_config_keys = ("secret_keys", "webhook_signing_key")
    # documented: retried up to 8 times, each delay after the previous attempt
    webhook_schedule = [timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=15),
                        timedelta(minutes=30), timedelta(hours=1), timedelta(hours=4),
                        timedelta(hours=12), timedelta(hours=12)]
    api_version = "3.31.4"

    def __init__(self, sandbox):
        super().__init__(sandbox)
        self.machine = PaymentMachine(self)

    def authenticate(self, req) -> Caller:
        header = req.headers.get("Authorization", "").strip()
        key = header[7:].strip() if header[:7].lower() == "bearer " else header
        if req.endpoint == "checkout.request_card_token":
            if not _PUBLIC_KEY.match(key):
                self.fail("unauthorized", 401)
            return Caller(tenant=key)
        if not (_NAS_KEY.match(key) or _ABC_KEY.match(key)):
            self.fail("unauthorized", 401)
        allowed = self.settings.get("secret_keys")
        if allowed and key not in allowed:
            self.fail("unauthorized", 401)
        return Caller(tenant=key)

    def request_id(self) -> str:
        return self.sandbox.ids.uuid4()

    def error(self, kind, status, detail=None) -> Response:
        # 401, 403 and 404 carry no body on Checkout.com; the SDK reads Cko-Request-Id instead.
        if kind in ("unauthorized", "not_found", "forbidden", "method_not_allowed"):
            return Response(b"", status=status)
        if kind == "too_large":
            return self.render_json({"request_id": self.request_id(), "error_type": "request_invalid",
                                     "error_codes": ["request_too_large"]}, 413)
        if kind in ("malformed", "unsupported_media_type"):
            return self.render_json({"request_id": self.request_id(), "error_type": "request_malformed",
                                     "error_codes": ["request_json_invalid"]}, 422 if status < 500 else status)
        if kind == "validation":
            return self.render_json({"request_id": self.request_id(), "error_type": "request_invalid",
                                     "error_codes": list(detail or [])}, status)
        if kind == "processing":
            return self.render_json({"request_id": self.request_id(), "error_type": "processing_error",
                                     "error_codes": list(detail or [])}, status)
        if kind == "too_many_requests":
            return self.render_json({"request_id": self.request_id(), "error_type": "request_invalid",
                                     "error_codes": list(detail or ["idempotency_key_in_use"])}, 429)
        if kind == "unavailable":
            return self.render_json({"request_id": self.request_id(), "error_type": "service_unavailable",
                                     "error_codes": ["service_unavailable"]}, status)
        return self.render_json({"request_id": self.request_id(), "error_type": "internal_error",
                                 "error_codes": ["internal_error"]}, status)

    def decorate(self, response: Response) -> Response:
        response.headers.setdefault("Cko-Request-Id", self.request_id())
        response.headers.setdefault("Cko-Version", self.api_version)
        if response.data and not response.headers.get("Content-Type"):
            response.headers["Content-Type"] = "application/json"
        return response

    def webhook_signer(self, tenant):
        key = self.settings.get("webhook_signing_key")
        if not key:
            return None
        extra = self.settings.get("webhook_headers") or {}

        def sign(body: bytes, delivery: dict, now) -> dict:
            return {**extra, "Cko-Signature": hmac.new(key.encode(), body, hashlib.sha256).hexdigest()}
        return sign

    def emit_event(self, payment: dict, event_type: str, action: dict | None) -> None:
        url = self.settings.get("webhook_url")
        if not url:
            return
        event_id = self.sandbox.ids.prefixed("evt_")
        now = self.sandbox.clock.now(payment["tenant"])
        payload = events.event(payment, event_type, action, event_id, now, self.machine, self.sandbox.store)
        self.emit(payment["tenant"], event_type, payload, url, subject=payment["id"], event_id=event_id)

    def decline_code_valid(self, code: str) -> bool:
        return str(code) in RESPONSE_SUMMARIES and not str(code).startswith("10")

    def hosted_action(self, object_id, action):
        from .routes import hosted_action
        return hosted_action(self, object_id, action)


PROVIDER = Checkout
