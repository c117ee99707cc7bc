"""Checkout.com (Unified Payments API): the Provider object — key auth, error table and envelope,
request ids, webhook signing and schedule."""
from __future__ import annotations

import re
from datetime import timedelta

from flask.globals import _cv_request
from marshmallow import Schema, ValidationError, fields, validate, validates

from ...core.idempotency import TTL_MAX_HOURS
from ...core.inputs import http_header, http_url
from ...core.signing import hmac_sha256
from ..base import Caller, Provider
from ..shape import ErrorSpec, Refusal
from .machine import Machine
from .routes import bp, hosted_action
from .testcards import RESPONSE_SUMMARIES

# NAS keys (sk_sbox_ + 27) as the SDK enforces, and legacy ABC keys (sk_test_<uuid>), sent bare.
_NAS_KEY = re.compile(r"^sk_(sbox_)?[a-z2-7]{26}[a-z2-7*#$=]$")
_ABC_KEY = re.compile(r"^sk_(test_)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# POST /tokens is the one call made with the public key (from the customer's browser).
_PUBLIC_KEY = re.compile(r"^pk_(sbox_)?[a-z2-7]{26}[a-z2-7*#$=]$|^pk_(test_)?[0-9a-f-]{36}$")

# kind -> (status, error_type, the error code). A row without an error_type has no body: 401, 403,
# 404 and 405 are empty on Checkout.com, whose SDK reads Cko-Request-Id instead. An unreadable
# body is 422 whatever status the core met.
ERRORS = {
    "unauthorized": ErrorSpec(401, ""),
    "forbidden": ErrorSpec(403, ""),
    "not_found": ErrorSpec(404, ""),
    "method_not_allowed": ErrorSpec(405, ""),
    "malformed": ErrorSpec(422, "request_malformed", "request_json_invalid", fixed=True, own_status=True),
    "unsupported_media_type": ErrorSpec(422, "request_malformed", "request_json_invalid", fixed=True,
                                        own_status=True),
    "too_large": ErrorSpec(413, "request_invalid", "request_too_large", fixed=True),
    "validation": ErrorSpec(422, "request_invalid", "request_invalid"),
    "in_progress": ErrorSpec(429, "request_invalid", "request_in_progress", fixed=True),
    "unavailable": ErrorSpec(503, "service_unavailable", "service_unavailable", fixed=True),
    "internal": ErrorSpec(500, "internal_error", "internal_error", fixed=True),
}


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
    # a negative TTL would let one key make two payments; past 100 years no clock gets there
    idempotency_ttl_hours = fields.Float(validate=validate.Range(min=0, max=TTL_MAX_HOURS))

    @validates("webhook_headers")
    def _headers(self, value, **kw):
        for name, text in value.items():
            http_header(name, text)


class Checkout(Provider):
    name = "checkout"
    title = "Checkout.com"
    mount = "/checkout"
    blueprint = bp
    config_schema = CheckoutConfig
    secret_config_keys = ("secret_keys", "webhook_signing_key")
    error_table = ERRORS
    machine_class = Machine
    decline_codes = frozenset(code for code in RESPONSE_SUMMARIES if not code.startswith("10"))
    hosted_action = hosted_action
    # documented: retried up to 8 times, each delay after the previous attempt
    webhook_schedule = [timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=15),
                        timedelta(minutes=30), timedelta(hours=1), timedelta(hours=4),
                        timedelta(hours=12), timedelta(hours=12)]
    api_version = "3.31.4"

    def authenticate(self, req) -> Caller:
        header = req.headers.get("Authorization", "").strip()
        key = header[7:].strip() if header[:7].lower() == "bearer " else header
        if req.endpoint == "checkout.request_card_token":
            if not _PUBLIC_KEY.match(key):
                raise Refusal("unauthorized")
            return Caller(tenant=key)
        if not (_NAS_KEY.match(key) or _ABC_KEY.match(key)):
            raise Refusal("unauthorized")
        allowed = self.settings.get("secret_keys")
        if allowed and key not in allowed:
            raise Refusal("unauthorized")
        return Caller(tenant=key)

    def request_id(self) -> str:
        """The answer's one id, drawn on first use and kept on the request: an error body's
        ``request_id`` and the ``Cko-Request-Id`` header agree, as the SDK reads either."""
        ctx = _cv_request.get(None)
        if ctx is None:   # outside a request nothing else can quote it
            return self.sandbox.ids.uuid4()
        environ = ctx.request.environ   # the request's own: an app context may outlive one request
        kept = environ.get("cko.request_id")
        if kept is None:
            kept = environ["cko.request_id"] = self.sandbox.ids.uuid4()
        return kept

    def envelope(self, spec, status, detail, fields) -> dict | None:
        if not spec.code:
            return None
        if isinstance(detail, list):   # validation pairs: their messages are the error codes
            codes = list(dict.fromkeys(message for _, message in detail))
        else:
            codes = [spec.text(detail)]
        return {"request_id": self.request_id(), "error_type": spec.code, "error_codes": codes or [spec.message]}

    def decorate(self, response):
        headers = response.headers
        request_id = self.request_id()   # drawn for every answer (once), kept or not, as the id stream expects
        present = {name.lower() for name, _ in headers.to_wsgi_list()}   # one pass over the headers
        if "cko-request-id" not in present:
            headers.add("Cko-Request-Id", request_id)
        if "cko-version" not in present:
            headers.add("Cko-Version", self.api_version)
        if "content-type" not in present and response.data:
            headers["Content-Type"] = "application/json"
        return response

    def webhook_signer(self, tenant):
        key = self.settings.get("webhook_signing_key")
        extra = self.settings.get("webhook_headers") or {}
        if not key and not extra:
            return None

        def sign(body: bytes, delivery: dict, now) -> dict:
            # the configured headers go with every delivery, signed or not
            if not key:
                return extra
            return {**extra, "Cko-Signature": hmac_sha256(key.encode(), body).hex()}
        return sign


PROVIDER = Checkout
