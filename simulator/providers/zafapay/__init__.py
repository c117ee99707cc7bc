"""ZafaPay (ZAFA PAY): the Provider object — Bearer auth, error envelope, webhook signing."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, validate, validates

from ...core.clock import MAX_DURATION, parse_duration
from ...core.idempotency import TTL_MAX_HOURS
from ...core.inputs import http_url
from ...core.signing import hmac_sha256
from ..base import Caller, Provider
from ..shape import ErrorSpec, Refusal
from . import testcards
from .machine import Machine
from .routes import bp, hosted_action

# Key prefixes are not published; any token of URL-safe characters is well-formed [ASSUMED].
_KEY = re.compile(r"^[A-Za-z0-9_\-.]{8,200}$")
_PUBLISHABLE = re.compile(r"^pk_(test|live)_[A-Za-z0-9]{8,100}$")
DEFAULT_WEBHOOK_SECRET = "whsec_zafapay_sandbox_default"

_BODY = {"param": "body"}
ERRORS = {
    "unauthorized": ErrorSpec(401, "unauthorized", "Invalid or missing API key."),
    "not_found": ErrorSpec(404, "not_found", "The requested resource was not found.", fixed=True),
    "method_not_allowed": ErrorSpec(405, "method_not_allowed", "Method not allowed on this path.", fixed=True),
    "malformed": ErrorSpec(400, "validation_error", "The request body is not valid JSON.",
                           {**_BODY, "details": [{"param": "body", "message": "malformed request"}]}),
    "too_large": ErrorSpec(413, "validation_error", "The request body is too large.", _BODY, fixed=True),
    "unsupported_media_type": ErrorSpec(415, "validation_error", "The request body must be application/json.",
                                        _BODY, fixed=True),
    "unavailable": ErrorSpec(503, "service_unavailable", "The service is temporarily unavailable.", fixed=True),
    "internal": ErrorSpec(500, "internal_error", "An unexpected error occurred.", fixed=True),
    "validation": ErrorSpec(400, "validation_error"),          # schema failures: every field in details
    "validation_error": ErrorSpec(400, "validation_error"),
    "unknown_object": ErrorSpec(404, "not_found"),             # an id the caller named does not exist
    "flow_not_found": ErrorSpec(404, "flow_not_found"),
    "idempotency_key_in_use": ErrorSpec(409, "idempotency_key_in_use",
                                        "A request with this Idempotency-Key is still in progress."),
    "idempotency_key_mismatch": ErrorSpec(400, "idempotency_key_mismatch",
                                          "This Idempotency-Key was used with a different request."),
    **{code: ErrorSpec(400, code) for code in (
        "amount_above_maximum", "amount_below_minimum", "flow_not_active", "invalid_amount", "invalid_status",
        "not_supported", "payment_method_blocked", "payment_method_detached", "payment_token_already_used",
        "payment_token_expired", "recurring_not_supported", "unsupported_currency")},
    **{code: ErrorSpec(400, code, message, {"type": "payment_error"})
       for code, (_, _, message) in testcards.DECLINE_CODES.items()},
}


def _key_format(pattern, value):
    # a key no request could carry would lock every caller out
    if not pattern.fullmatch(value):
        raise ValidationError(f"not a key of the form {pattern.pattern}")


class ZafaPayConfig(Schema):
    api_keys = fields.List(fields.String(validate=lambda k: _key_format(_KEY, k)))
    publishable_keys = fields.Dict(keys=fields.String(validate=lambda k: _key_format(_PUBLISHABLE, k)),
                                   values=fields.String(validate=lambda k: _key_format(_KEY, k)))   # pk_... -> api key
    webhook_url = fields.String(allow_none=True, validate=http_url)
    webhook_secret = fields.String(allow_none=True, validate=validate.Regexp(r"^whsec_\S+$", error="must start with whsec_"))
    signature_header = fields.String(validate=validate.OneOf(["sandbox", "production", "both"]))
    webhook_error_format = fields.String(validate=validate.OneOf(["object", "string"]))
    webhook_schedule = fields.List(fields.String())
    success_redirect_url = fields.String(allow_none=True, validate=http_url)
    failure_redirect_url = fields.String(allow_none=True, validate=http_url)
    merchant_name = fields.String()
    currencies = fields.List(fields.String(validate=validate.Regexp(r"^[a-z]{3}$")))
    amount_min = fields.Decimal()
    amount_max = fields.Decimal()
    idempotency_ttl_hours = fields.Float(validate=validate.Range(min=0, max=TTL_MAX_HOURS))

    @validates("webhook_schedule")
    def _schedule(self, value, **kw):
        for item in value:
            try:
                parse_duration(item, MAX_DURATION)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None


class ZafaPay(Provider):
    name = "zafapay"
    title = "ZafaPay"
    mount = "/zafapay"
    blueprint = bp
    config_schema = ZafaPayConfig
    secret_config_keys = ("api_keys", "webhook_secret", "publishable_keys")
    error_table = ERRORS
    machine_class = Machine
    decline_codes = testcards.DECLINE_CODES
    hosted_action = hosted_action
    default_webhook_secret = DEFAULT_WEBHOOK_SECRET
    # not documented [ASSUMED]: five retries after 1 min, 5 min, 30 min, 2 h and 6 h
    webhook_schedule = [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
                        timedelta(hours=2), timedelta(hours=6)]

    # -- config ------------------------------------------------------------------------------
    def currencies(self) -> tuple[str, ...]:
        return tuple(self.settings.get("currencies") or testcards.DEFAULT_CURRENCIES)

    def amount_limits(self) -> tuple[Decimal, Decimal]:
        low = self.settings.get("amount_min")
        high = self.settings.get("amount_max")
        return (Decimal(str(low)) if low is not None else testcards.DEFAULT_MIN,
                Decimal(str(high)) if high is not None else testcards.DEFAULT_MAX)

    def schedule(self) -> list[timedelta]:
        custom = self.settings.get("webhook_schedule")
        return [parse_duration(d) for d in custom] if custom is not None else self.webhook_schedule

    def webhook_secret(self) -> str:
        return self.settings.get("webhook_secret") or DEFAULT_WEBHOOK_SECRET

    def merchant_id(self, tenant: str) -> str:
        return "mer_" + hashlib.sha256(tenant.encode()).hexdigest()[:24]

    # -- auth ----------------------------------------------------------------------------------
    def authenticate(self, req) -> Caller:
        header = req.headers.get("Authorization", "")
        scheme, _, key = header.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Refusal("unauthorized", "Missing or malformed Authorization header.")
        if key.startswith("pk_"):
            # publishable keys are good for tokenization only
            if not (req.path.rstrip("/").endswith("/v1/tokens") and _PUBLISHABLE.match(key)):
                raise Refusal("unauthorized", "Invalid API key.")
            mapped = (self.settings.get("publishable_keys") or {}).get(key)
            if self.settings.get("publishable_keys") and mapped is None:
                raise Refusal("unauthorized", "Invalid API key.")
            return Caller(tenant=mapped or key)
        if not _KEY.match(key):
            raise Refusal("unauthorized", "Invalid API key.")
        allowed = self.settings.get("api_keys")
        if allowed and key not in allowed:
            raise Refusal("unauthorized", "Invalid API key.")
        return Caller(tenant=key)

    # -- errors --------------------------------------------------------------------------------
    def request_id(self) -> str:
        return self.sandbox.ids.prefixed("req_", 24, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

    def envelope(self, spec, status, detail, fields) -> dict:
        members = {k: v for k, v in spec.extra.items() if k != "type"}
        members.update(fields)
        pairs = detail if isinstance(detail, list) else None
        if pairs:
            pairs = [("body" if path == "_schema" else path, message) for path, message in pairs]
            message = f"Invalid parameter {pairs[0][0]}: {pairs[0][1]}"
            members.update(param=pairs[0][0], details=[{"param": k, "message": m} for k, m in pairs])
        else:
            message = spec.text(detail) or spec.code.replace("_", " ").capitalize() + "."
        if status in (401, 403):
            etype = "authentication_error"
        elif status >= 500:
            etype = "api_error"
        else:
            etype = spec.extra.get("type", "invalid_request_error")
        body = {"type": etype, "code": spec.code, "message": message,
                "request_id": members.pop("request_id", None) or self.request_id()}
        for key in ("param", "details"):
            if key in members:
                body[key] = members.pop(key)
        body.update(members)
        return {"error": body}

    # -- webhooks ------------------------------------------------------------------------------
    def webhook_signer(self, tenant):
        secret = self.webhook_secret().encode()
        which = self.settings.get("signature_header", "sandbox")

        def sign(body: bytes, delivery: dict, now) -> dict:
            value = hmac_sha256(secret, body).hex()
            headers = {}
            if which in ("sandbox", "both"):
                headers["X-Zafapay-Signature-Sandbox"] = value
            if which in ("production", "both"):
                headers["X-Zafapay-Signature"] = value
            return headers
        return sign


PROVIDER = ZafaPay
