"""Bank 131 acquiring API: the Provider object (auth by RSA request signature, error envelope,
webhook signing with the sandbox's own RSA key, retry schedule)."""
from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from datetime import timedelta

from marshmallow import Schema, ValidationError, fields, validates

from ...core.clock import MAX_DURATION, parse_duration
from ...core.inputs import http_url
from ...core.memo import Memo
from ..base import Caller, Provider
from ..shape import ErrorSpec, Refusal
from .machine import Machine
from .routes import bp, hosted_action
from .testcards import DECLINE_CODES


# cryptography is imported where a key is first loaded or used: a sixteenth of the start-up time
def load_public_key(pem: str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


class ProjectConfig(Schema):
    public_key = fields.String(allow_none=True)
    webhook_url = fields.String(allow_none=True, validate=http_url)
    auto_confirm = fields.Boolean()

    @validates("public_key")
    def _pem(self, value, **kw):
        if value:
            try:
                load_public_key(value)
            except (ValueError, TypeError) as exc:
                raise ValidationError(f"not an RSA public key in PEM: {exc}") from None


class Bank131Config(Schema):
    projects = fields.Dict(keys=fields.String(), values=fields.Nested(ProjectConfig))
    webhook_url = fields.String(allow_none=True, validate=http_url)     # for projects not listed under `projects`
    auto_confirm = fields.Boolean()
    confirm_timeout = fields.String()                # ISO-8601 duration, default PT1H

    @validates("confirm_timeout")
    def _duration(self, value, **kw):
        try:
            parse_duration(value, MAX_DURATION)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


# Bank 131's envelope has no discriminator but the code, so core kinds map onto its codes.
ERRORS = {
    "not_found": ErrorSpec(404, "invalid_request", "unknown method"),
    "method_not_allowed": ErrorSpec(405, "invalid_request", "every method is called with POST"),
    "malformed": ErrorSpec(400, "invalid_request", "invalid_request"),
    "too_large": ErrorSpec(413, "invalid_request", "request body too large"),
    "unsupported_media_type": ErrorSpec(415, "invalid_request", "invalid_request"),
    "unauthorized": ErrorSpec(401, "authentication_error", "authentication_error"),
    "internal": ErrorSpec(500, "internal_error", "internal error"),
    "unavailable": ErrorSpec(503, "internal_error", "service unavailable"),
    "validation": ErrorSpec(400, "invalid_request"),
    "identification_error": ErrorSpec(401, "identification_error"),
    "authentication_error": ErrorSpec(401, "authentication_error"),
    "invalid_request": ErrorSpec(400, "invalid_request"),
    "session_wrong_state": ErrorSpec(400, "session_wrong_state"),
    "idempotency_key_already_exists": ErrorSpec(400, "idempotency_key_already_exists"),
    "refund_amount_too_large": ErrorSpec(400, "refund_amount_too_large"),
    "bank_card_expired": ErrorSpec(400, "bank_card_expired"),
    "binding_is_deactivated": ErrorSpec(400, "binding_is_deactivated"),
}


class Bank131(Provider):
    name = "bank131"
    title = "Bank 131"
    mount = "/bank131"
    blueprint = bp
    config_schema = Bank131Config
    secret_config_keys = ()
    error_table = ERRORS
    machine_class = Machine
    decline_codes = DECLINE_CODES
    hosted_action = hosted_action
    # The bank re-sends "at growing intervals until it gets a 200"; the schedule is not published.
    # Ours doubles from one minute to a day and then stays daily, 18 retries (~8 days) in all, so
    # the outbox ends somewhere.
    webhook_schedule = ([timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32)]
                        + [timedelta(hours=h) for h in (1, 2, 4, 8, 16)] + [timedelta(days=1)] * 7)
    default_confirm_timeout = timedelta(hours=1)

    def __init__(self, sandbox) -> None:
        super().__init__(sandbox)
        self._keys: dict = {}
        self._bank_key = None
        self._key_lock = threading.Lock()
        # (project, signature, body digest) -> the key it verified with: a client polling a status
        # signs the same body every time, and PKCS#1 v1.5 verification always gives the same answer
        self._verified = Memo(1024)

    def configure(self, settings: dict) -> None:
        super().configure(settings)
        self._keys = {name: load_public_key(p["public_key"])
                      for name, p in (self.settings.get("projects") or {}).items()
                      if p and p.get("public_key")}

    def project(self, name: str) -> dict:
        return (self.settings.get("projects") or {}).get(name) or {}

    def webhook_url(self, project: str) -> str | None:
        return self.project(project).get("webhook_url") or self.settings.get("webhook_url")

    def auto_confirm(self, project: str) -> bool:
        return bool(self.project(project).get("auto_confirm", self.settings.get("auto_confirm", False)))

    def confirm_timeout(self) -> timedelta:
        value = self.settings.get("confirm_timeout")
        return parse_duration(value) if value else self.default_confirm_timeout

    # -- auth --------------------------------------------------------------------------------
    def authenticate(self, req) -> Caller:
        # optional whitespace around a header value is SP and HTAB (RFC 9110), not the NBSP or NEL
        # that str.strip() also drops from a Latin-1 header: the project is the tenant, as sent
        project = (req.headers.get("X-PARTNER-PROJECT") or "").strip(" \t")
        if not project:
            raise Refusal("identification_error", "X-PARTNER-PROJECT header is required")
        sign = (req.headers.get("X-PARTNER-SIGN") or "").strip(" \t")
        if not sign:
            raise Refusal("authentication_error", "X-PARTNER-SIGN header is required")
        key = self._keys.get(project)
        if key is None:
            # no public key registered for this project: nothing to verify against
            return Caller(tenant=project, verified=False)
        body = req.get_data(cache=True)
        seen = (project, sign, hashlib.sha256(body).digest())
        if self._verified.get(seen) is key:
            return Caller(tenant=project, verified=True)
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        try:
            signature = base64.b64decode(sign, validate=True)
            key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
        except (binascii.Error, ValueError, InvalidSignature):
            raise Refusal("authentication_error", "check the X-PARTNER-SIGN signature")
        self._verified.keep(seen, key)
        return Caller(tenant=project, verified=True)

    # -- errors ------------------------------------------------------------------------------
    def envelope(self, spec, status, detail, fields) -> dict:
        return {"status": "error", "error": {"code": spec.code, "description": spec.text(detail) or spec.code}}

    # -- webhook signing ---------------------------------------------------------------------
    def bank_key(self):
        # One RSA key per Sandbox instance, made on first use: a fresh server has a fresh key, and
        # merchants fetch the public half from /_sandbox/keys/bank131. RSA PKCS#1 v1.5 signatures
        # are deterministic for a given key, so equal bodies get equal signatures within a run.
        with self._key_lock:
            if self._bank_key is None:
                from cryptography.hazmat.primitives.asymmetric import rsa
                self._bank_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._bank_key

    def sign(self, body: bytes) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        return base64.b64encode(self.bank_key().sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()

    def webhook_signer(self, tenant):
        def signer(body: bytes, delivery: dict, now) -> dict:
            return {"X-PARTNER-SIGN": self.sign(body)}
        return signer

    def public_key_pem(self) -> str:
        from cryptography.hazmat.primitives import serialization
        return self.bank_key().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def startup_lines(self, base_url: str) -> list[str]:
        return super().startup_lines(base_url) + [
            f"{'':<13} widget {base_url}{self.mount}/widget/<public_token>  "
            f"webhook key {base_url}/_sandbox/keys/{self.name}"]

    def aliases_of(self, kind: str, id: str, obj: dict, tenant: str) -> list[str]:
        # the widget's address carries a public token, which its own record maps to the session
        if kind != "session":
            return []
        return [rec["token"] for rec in self.store.where("public_token", tenant, "session_id", id)]


PROVIDER = Bank131
