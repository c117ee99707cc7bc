"""ZafaPay (ZAFA PAY): the Provider object — Bearer auth, error envelope, webhook signing."""
from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta
from decimal import Decimal

from flask import Response
from marshmallow import Schema, ValidationError, fields, validate, validates

from ...core.clock import parse_duration
from ...core.inputs import http_url
from ..base import Caller, Provider, ProviderError
from . import testcards
from .routes import bp

# Key prefixes are not published; any token of URL-safe characters is well-formed [ASSUMED].
_KEY = re.compile(r"^[A-Za-z0-9_\-.]{8,200}$")
_PUBLISHABLE = re.compile(r"^pk_(test|live)_[A-Za-z0-9]{8,100}$")
DEFAULT_WEBHOOK_SECRET = "whsec_zafapay_sandbox_default"

# HTTP status per code where it is not 400
_PAYMENT_ERRORS = set(testcards.DECLINE_CODES) | {"payment_failed", "capture_failed", "refund_failed"}


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
    idempotency_ttl_hours = fields.Float(validate=validate.Range(min=0))

    @validates("webhook_schedule")
    def _schedule(self, value, **kw):
        for item in value:
            try:
                parse_duration(item)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None


class ZafaPay(Provider):
    name = "zafapay"
    title = "ZafaPay"
    mount = "/zafapay"
    blueprint = bp
    config_schema = ZafaPayConfig
    secret_config_keys = ("api_keys", "webhook_secret", "publishable_keys")
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

    def startup_lines(self, base_url: str) -> list[str]:
        lines = super().startup_lines(base_url)
        if not self.settings.get("webhook_secret"):
            lines.append(f"{'':<13} webhook secret (default): {DEFAULT_WEBHOOK_SECRET}")
        return lines

    # -- auth ----------------------------------------------------------------------------------
    def authenticate(self, req) -> Caller:
        header = req.headers.get("Authorization", "")
        scheme, _, key = header.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            self.fail("unauthorized", 401, "Missing or malformed Authorization header.")
        if key.startswith("pk_"):
            # publishable keys are good for tokenization only
            if not (req.path.rstrip("/").endswith("/v1/tokens") and _PUBLISHABLE.match(key)):
                self.fail("unauthorized", 401, "Invalid API key.")
            mapped = (self.settings.get("publishable_keys") or {}).get(key)
            if self.settings.get("publishable_keys") and mapped is None:
                self.fail("unauthorized", 401, "Invalid API key.")
            return Caller(tenant=mapped or key)
        if not _KEY.match(key):
            self.fail("unauthorized", 401, "Invalid API key.")
        allowed = self.settings.get("api_keys")
        if allowed and key not in allowed:
            self.fail("unauthorized", 401, "Invalid API key.")
        return Caller(tenant=key)

    # -- errors --------------------------------------------------------------------------------
    def request_id(self) -> str:
        return self.sandbox.ids.prefixed("req_", 24, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

    def api_error(self, code: str, status: int = 400, message: str | None = None, *, param=None, details=None,
                  **extra) -> Response:
        if status in (401, 403):
            etype = "authentication_error"
        elif status >= 500:
            etype = "api_error"
        elif code in _PAYMENT_ERRORS:
            etype = "payment_error"
        else:
            etype = "invalid_request_error"
        body = {"type": etype, "code": code, "message": message or code.replace("_", " ").capitalize() + ".",
                "request_id": extra.pop("request_id", None) or self.request_id()}
        if param is not None:
            body["param"] = param
        if details is not None:
            body["details"] = details
        body.update(extra)
        return self.render_json({"error": body}, status)

    def reject(self, code: str, status: int = 400, message: str | None = None, **kw):
        raise ProviderError(self.api_error(code, status, message, **kw))

    def validation(self, errors: list[tuple[str, str]]):
        param = errors[0][0]
        self.reject("validation_error", 400, f"Invalid parameter {param}: {errors[0][1]}", param=param,
                    details=[{"param": k, "message": m} for k, m in errors])

    def error(self, kind, status, detail=None) -> Response:
        message = detail if isinstance(detail, str) else None
        if kind == "unauthorized":
            return self.api_error("unauthorized", 401, message or "Invalid or missing API key.")
        if kind == "not_found":
            return self.api_error("not_found", 404, "The requested resource was not found.")
        if kind == "method_not_allowed":
            return self.api_error("method_not_allowed", 405, "Method not allowed on this path.")
        if kind == "malformed":
            return self.api_error("validation_error", 400, message or "The request body is not valid JSON.",
                                  param="body", details=[{"param": "body", "message": "malformed request"}])
        if kind == "too_large":
            return self.api_error("validation_error", 413, "The request body is too large.", param="body")
        if kind == "unsupported_media_type":
            return self.api_error("validation_error", 415, "The request body must be application/json.",
                                  param="body")
        if kind == "unavailable":
            return self.api_error("service_unavailable", status, "The service is temporarily unavailable.")
        if kind == "internal":
            return self.api_error("internal_error", 500, "An unexpected error occurred.")
        return self.api_error(kind, status, message)

    # -- webhooks ------------------------------------------------------------------------------
    def webhook_signer(self, tenant):
        secret = self.webhook_secret().encode()
        which = self.settings.get("signature_header", "sandbox")

        def sign(body: bytes, delivery: dict, now) -> dict:
            value = hmac.new(secret, body, hashlib.sha256).hexdigest()
            headers = {}
            if which in ("sandbox", "both"):
                headers["X-Zafapay-Signature-Sandbox"] = value
            if which in ("production", "both"):
                headers["X-Zafapay-Signature"] = value
            return headers
        return sign

    def emit_payment(self, tenant: str, event: str, pay: dict, amount_minor: int | None = None) -> None:
        from .events import payload
        body = payload(event, pay, merchant_id=self.merchant_id(tenant),
                       merchant_name=self.settings.get("merchant_name", "Sandbox Merchant"), now=self.now(tenant),
                       error_format=self.settings.get("webhook_error_format", "object"), amount_minor=amount_minor)
        self.emit(tenant, event, body, self.settings.get("webhook_url"), subject=pay["id"],
                  schedule=self.schedule())

    # -- scenarios and hosted pages ------------------------------------------------------------
    def decline_code_valid(self, code: str) -> bool:
        return str(code) in testcards.DECLINE_CODES

    def hosted_action(self, object_id, action):
        from .routes import hosted_action
        return hosted_action(self, object_id, action)


PROVIDER = ZafaPay
