"""Gr4vy (the Speakeasy-generated API the official SDKs speak): the Provider object.

Authentication is a bearer JWT signed ES512 with a P-521 key; the JOSE ``kid`` is the RFC 7638
thumbprint of the public key. The tenant is the key id plus the merchant account named by
``x-gr4vy-merchant-account-id``, so two merchant accounts never see each other's data.
"""
from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import timedelta

from marshmallow import Schema, ValidationError, fields

from ...core.inputs import http_url
from ...core.memo import Memo
from ...core.signing import hmac_sha256
from ...core.webhooks import exponential_schedule
from ..base import Caller, Provider
from ..shape import ErrorSpec, Refusal
from . import testcards, views
from .machine import Machine
from .routes import bp, hosted_action

DEFAULT_WEBHOOK_SECRET = "gr4vy-sandbox-webhook-secret"
# SDK tokens carry iat = nbf = now; a client clock a little ahead of ours must not be rejected.
JWT_LEEWAY_SECONDS = 60

# Gr4vy's code follows the HTTP status; a kind's own row only sets the message. When a status is
# forced (a scenario's http_error, the core's HTTP error), the first row with that status answers.
ERRORS = {
    "validation": ErrorSpec(400, "bad_request", "Request failed validation"),
    "malformed": ErrorSpec(400, "bad_request", "Request body could not be parsed as JSON"),
    "invalid_state": ErrorSpec(400, "bad_request", "Request failed validation"),
    "unauthorized": ErrorSpec(401, "unauthorized", "No valid API authentication found"),
    "forbidden": ErrorSpec(403, "forbidden", "Invalid credentials"),
    "not_found": ErrorSpec(404, "not_found", "The resource could not be found"),
    "method_not_allowed": ErrorSpec(405, "method_not_allowed", "Method not allowed"),
    "conflict": ErrorSpec(409, "duplicate_record", "Duplicate record"),
    "concurrent_request": ErrorSpec(409, "concurrent_request",
                                    "A request with this idempotency key is already being processed"),
    "too_large": ErrorSpec(413, "bad_request", "Request body too large"),
    "unsupported_media_type": ErrorSpec(415, "bad_request", "Request body must be application/json"),
    "too_early": ErrorSpec(425, "too_early", "Too early"),
    "too_many_requests": ErrorSpec(429, "too_many_requests", "Too many requests"),
    "internal": ErrorSpec(500, "server_error", "Request could not be processed", fixed=True),
    "bad_gateway": ErrorSpec(502, "bad_gateway", "Bad gateway"),
    "unavailable": ErrorSpec(503, "service_unavailable", "Service unavailable"),
    "gateway_timeout": ErrorSpec(504, "gateway_timeout", "Gateway timeout"),
}
_BY_STATUS = {spec.status: spec for spec in reversed(ERRORS.values())}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(public_key) -> str:
    """RFC 7638 JWK thumbprint of an EC public key, as the SDK puts it in ``kid``."""
    numbers = public_key.public_numbers()
    size = (public_key.curve.key_size + 7) // 8
    jwk = {"crv": "P-521", "kty": "EC",
           "x": _b64url(numbers.x.to_bytes(size, "big")), "y": _b64url(numbers.y.to_bytes(size, "big"))}
    text = json.dumps(jwk, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(text.encode()).digest())


def load_public_key(pem: str):
    # imported with the first key, like PyJWT with the first token: not every start needs them
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp521r1":
        raise ValueError("not an ECDSA P-521 public key")
    return key


def _valid_pem(value: str) -> None:
    try:
        load_public_key(value)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"public key must be an ECDSA P-521 public key in PEM: {exc}") from None


class Gr4vyConfig(Schema):
    public_keys = fields.List(fields.String(validate=_valid_pem))
    webhook_url = fields.String(allow_none=True, validate=http_url)
    webhook_secret = fields.String(allow_none=True)
    gr4vy_id = fields.String()


# Resource named by the first path segment -> the scope family the spec requires.
_SCOPE_FAMILY = {"transactions": "transactions", "refunds": "transactions",
                 "payment-methods": "payment-methods", "buyers": "buyers"}
_EMBED_ALLOWED = {("POST", "transactions"), ("DELETE", "payment-methods"), ("GET", "buyers/payment-methods")}


class Gr4vy(Provider):
    name = "gr4vy"
    title = "Gr4vy"
    mount = "/gr4vy"
    blueprint = bp
    config_schema = Gr4vyConfig
    secret_config_keys = ("webhook_secret",)
    error_table = ERRORS
    machine_class = Machine
    decline_codes = testcards.ALL_CODES
    hosted_action = hosted_action
    default_webhook_secret = DEFAULT_WEBHOOK_SECRET
    # documented: retried with exponential back-off for up to 7 days
    webhook_schedule = exponential_schedule(timedelta(minutes=1), timedelta(hours=24), timedelta(days=7))

    def configure(self, settings: dict) -> None:
        super().configure(settings)
        # token -> (kid, key, claims) of tokens whose ES512 signature verified (a millisecond each):
        # the SDK reuses one token until it expires, so a repeat only has its times checked again
        self._verified = Memo(1024)   # token -> (kid, key, claims)
        self.keys = {}
        for pem in self.settings.get("public_keys") or []:
            key = load_public_key(pem)
            self.keys[thumbprint(key)] = key

    @property
    def gr4vy_id(self) -> str:
        return self.settings.get("gr4vy_id") or "sandbox"

    @property
    def webhook_secret(self) -> str:
        return self.settings.get("webhook_secret") or DEFAULT_WEBHOOK_SECRET

    # -- auth ----------------------------------------------------------------------------------
    def authenticate(self, req) -> Caller:
        header = req.headers.get("Authorization", "").strip()
        if header[:7].lower() != "bearer ":
            raise Refusal("unauthorized")
        token = header[7:].strip()
        cached = self._verified.get(token)
        if cached is not None and self.keys.get(cached[0]) is cached[1]:
            return self._caller(req, cached[0], cached[2], True)
        import jwt   # a twentieth of the start-up time, paid by the first Gr4vy request instead
        try:
            jose = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Refusal("unauthorized")
        kid = jose.get("kid")
        if jose.get("alg") != "ES512" or not isinstance(kid, str) or not kid:
            raise Refusal("unauthorized")
        # Freshness is checked on the wall clock (PyJWT's time.time): clients sign with real
        # time, and moving the virtual clock must never make a fresh token stale.
        options = {"require": ["exp"], "verify_exp": True, "verify_nbf": True, "verify_iat": False}
        verified = bool(self.keys)
        try:
            if self.keys:
                key = self.keys.get(kid)
                if key is None:
                    raise Refusal("unauthorized")
                claims = jwt.decode(token, key, algorithms=["ES512"], leeway=JWT_LEEWAY_SECONDS,
                                    options=options)
            else:
                claims = jwt.decode(token, algorithms=["ES512"], leeway=JWT_LEEWAY_SECONDS,
                                    options={**options, "verify_signature": False})
        except jwt.PyJWTError:
            raise Refusal("unauthorized")
        if not isinstance(claims, dict):
            raise Refusal("unauthorized")
        if verified:
            self._verified.keep(token, (kid, key, claims))
        return self._caller(req, kid, claims, verified)

    def _caller(self, req, kid: str, claims: dict, verified: bool) -> Caller:
        now = time.time()   # PyJWT's own checks, for a token taken from the cache
        if int(claims["exp"]) <= now - JWT_LEEWAY_SECONDS or int(claims.get("nbf", now)) > now + JWT_LEEWAY_SECONDS:
            raise Refusal("unauthorized")
        self._check_scopes(req, claims.get("scopes"))
        merchant = req.headers.get("x-gr4vy-merchant-account-id", "").strip() or "default"
        if len(merchant) > 255:
            raise Refusal("unauthorized")
        return Caller(tenant=f"{kid}:{merchant}", verified=verified)

    def _check_scopes(self, req, scopes) -> None:
        rest = req.path[len(self.mount):].strip("/").split("/")
        first = rest[0] if rest else ""
        family = _SCOPE_FAMILY.get(first)
        if family is None:
            return  # not an API resource: the router answers 404
        if first == "buyers" and len(rest) > 1 and rest[1] == "payment-methods":
            family, first = "payment-methods", "buyers/payment-methods"
        access = "read" if req.method in ("GET", "HEAD") else "write"
        scopes = scopes if isinstance(scopes, list) else []
        if f"{family}.{access}" in scopes or f"*.{access}" in scopes:
            return
        if "embed" in scopes and (req.method, first) in _EMBED_ALLOWED:
            return
        raise Refusal("forbidden", f"Token is missing the {family}.{access} scope")

    @staticmethod
    def merchant_account_id(tenant: str) -> str:
        return tenant.split(":", 1)[1] if ":" in tenant else "default"

    # -- errors --------------------------------------------------------------------------------
    def envelope(self, spec, status, detail, fields) -> dict:
        """Gr4vy's error object. Validation pairs are ``(JSON pointer, message)``; ``location``
        (body, query, header) and ``type`` describe them; a ``resource_id`` names the clash."""
        row = spec if status == spec.status else _BY_STATUS.get(status) or ErrorSpec(
            status, "server_error" if status >= 500 else "bad_request", "Request could not be processed")
        details = []
        if isinstance(detail, list):
            location = fields.get("location", "body")
            details = [views.error_detail(pointer, message, location, fields.get("type"))
                       for pointer, message in detail]
            message = spec.message
        elif isinstance(detail, str) and detail and not spec.fixed:
            message = detail
        else:
            message = row.message
        body = {"type": "error", "code": row.code, "status": status, "message": message, "details": details}
        if fields.get("resource_id"):
            body["resource_id"] = fields["resource_id"]
        return body

    # -- webhooks ------------------------------------------------------------------------------
    def webhook_signer(self, tenant):
        secret = self.webhook_secret

        def sign(body: bytes, delivery: dict, now) -> dict:
            timestamp = str(int(now.timestamp()))
            digest = hmac_sha256(secret.encode(), timestamp.encode() + b"." + body).hex()
            return {"X-Gr4vy-Webhook-ID": delivery.get("event_id") or delivery["id"],
                    "X-Gr4vy-Webhook-Timestamp": timestamp,
                    "X-Gr4vy-Webhook-Signatures": digest}
        return sign


PROVIDER = Gr4vy
