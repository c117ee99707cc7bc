"""A sixth provider in the smallest complete form: the template a new provider starts from.

It is not in the registry: the test mounts it with ``create_app(extra_providers=[Skeleton])``.
Registering a real one is its package under ``simulator/providers/`` plus its name in
``REGISTERED``.
"""
from __future__ import annotations

import hashlib
import hmac

from simulator.providers.base import Caller, Provider
from simulator.providers.shape import ErrorSpec, Refusal

from .machine import Machine
from .routes import bp, hosted_action
from .testcards import DECLINE_CODES

WEBHOOK_SECRET = b"skeleton-webhook-secret"

ERRORS = {
    # the core's kinds: every provider answers these
    "not_found": ErrorSpec(404, "not_found", "No such resource.", fixed=True),
    "method_not_allowed": ErrorSpec(405, "method_not_allowed", "Method not allowed.", fixed=True),
    "unauthorized": ErrorSpec(401, "unauthorized", "Missing or unknown API key."),
    "malformed": ErrorSpec(400, "malformed_request", "The body is not a JSON object."),
    "too_large": ErrorSpec(413, "malformed_request", "The body is too large.", fixed=True),
    "unsupported_media_type": ErrorSpec(415, "malformed_request", "Send JSON.", fixed=True),
    "internal": ErrorSpec(500, "internal_error", "Something went wrong.", fixed=True),
    "unavailable": ErrorSpec(503, "unavailable", "Try again later.", fixed=True),
    # this provider's own
    "validation": ErrorSpec(400, "invalid_fields", "Some fields are invalid."),
    "invalid_state": ErrorSpec(409, "invalid_state"),
    "declined": ErrorSpec(402, "declined", "The payment was declined."),
}


class Skeleton(Provider):
    name = "skeleton"
    title = "Skeleton"
    mount = "/skeleton"
    blueprint = bp
    error_table = ERRORS
    machine_class = Machine
    decline_codes = DECLINE_CODES
    hosted_action = hosted_action

    def authenticate(self, req) -> Caller:
        scheme, _, key = req.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not key.startswith("sk_"):
            raise Refusal("unauthorized")
        return Caller(tenant=key)

    def envelope(self, spec, status, detail, fields) -> dict:
        body = {"code": spec.code, "message": spec.text(detail)}
        if isinstance(detail, list):
            body["fields"] = [{"field": path, "message": message} for path, message in detail]
        body.update(fields)
        return {"error": body}

    def webhook_signer(self, tenant):
        def sign(body: bytes, delivery: dict, now) -> dict:
            return {"Skeleton-Signature": hmac.new(WEBHOOK_SECRET, body, hashlib.sha256).hexdigest()}
        return sign


PROVIDER = Skeleton
