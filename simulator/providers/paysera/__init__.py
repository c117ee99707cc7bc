"""Paysera Checkout REST API ("Recurring Billing"): the Provider object and MAC authentication."""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from datetime import timedelta
from urllib.parse import parse_qs, quote

from flask import Response
from marshmallow import Schema, fields, validate

from ...core.webhooks import exponential_schedule
from ..base import Caller, Provider
from .routes import bp

# Built in so the sandbox works without a config file; printed at start.
DEFAULT_MAC_ID = "sandbox-mac-id"
DEFAULT_MAC_KEY = "sandbox-mac-key-change-me-0123456789"

UNAUTHORIZED_DESCRIPTION = "You have not provided any credentials or they are invalid"
_DESCRIPTIONS = {
    "invalid_request": "Request content is invalid",
    "invalid_parameters": "Some required parameter is missing or it's format is invalid",
    "invalid_state": "Requested action cannot be made to the current state of resource",
    "not_found": "Resource was not found",
    "forbidden": "You have no rights to access requested resource or make requested action",
    "internal_server_error": "Unexpected internal system error",
    "unauthorized": UNAUTHORIZED_DESCRIPTION,
}

_PARAM = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*"([^"]*)"\s*(?:,|$)')


def parse_mac_header(value: str) -> dict | None:
    """``MAC id="..", ts="..", ...`` -> {name: value}; None if it is not a well-formed MAC header.

    A quoted-string scan, never a split on commas or spaces: Paysera's nonces may contain both.
    """
    m = re.match(r"^\s*MAC\s+", value or "", re.IGNORECASE)
    if not m:
        return None
    params: dict[str, str] = {}
    pos = m.end()
    text = value.rstrip()
    while pos < len(text):
        pm = _PARAM.match(text, pos)
        if not pm or pm.end() == pos:
            return None
        name = pm.group(1)
        if name in params:
            return None
        params[name] = pm.group(2)
        pos = pm.end()
    return params


def normalized_string(ts: str, nonce: str, method: str, uri: str, host: str, port: str, ext: str) -> str:
    return "\n".join([ts, nonce, method.upper(), uri, host.lower(), str(port), ext]) + "\n"


def mac_value(key: str, normalized: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), normalized.encode(), hashlib.sha256).digest()).decode()


def body_hash(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


class PayseraConfig(Schema):
    credentials = fields.Dict(keys=fields.String(validate=validate.Length(min=1)),
                              values=fields.String(validate=validate.Length(min=1)))
    include_default_credentials = fields.Boolean()
    ts_window_seconds = fields.Integer(validate=validate.Range(min=0))   # 0: no freshness check
    nonce_replay_check = fields.Boolean()
    require_body_hash = fields.Boolean()
    two_step = fields.Boolean()
    callback_notification_id = fields.String(validate=validate.OneOf(["both", "body", "query"]))


class Paysera(Provider):
    name = "paysera"
    title = "Paysera"
    mount = "/paysera"
    blueprint = bp
    config_schema = PayseraConfig
    secret_config_keys = ("credentials",)
    # 1 min, doubling, capped at 6 h, while the whole run stays within 7 days
    webhook_schedule = exponential_schedule(timedelta(minutes=1), timedelta(hours=6), timedelta(days=7))

    def __init__(self, sandbox) -> None:
        super().__init__(sandbox)
        self._nonces: dict[tuple[str, str, str], float] = {}
        self._nonce_lock = threading.Lock()
        from .machine import Machine
        self.machine = Machine(self)

    # -- credentials -------------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        configured = dict(self.settings.get("credentials") or {})
        if not configured or self.settings.get("include_default_credentials", False):
            configured.setdefault(DEFAULT_MAC_ID, DEFAULT_MAC_KEY)
        return configured

    def startup_lines(self, base_url: str) -> list[str]:
        lines = [f"{self.title:<13} {base_url}{self.mount}/"]
        for mac_id, key in self.credentials().items():
            lines.append(f"{'':<13} MAC id {mac_id}  key {key}  (hmac-sha-256)")
        return lines

    # -- MAC access authentication -----------------------------------------------------------
    def authenticate(self, req) -> Caller:
        params = parse_mac_header(req.headers.get("Authorization", ""))
        if params is None or not all(params.get(k) for k in ("id", "ts", "nonce", "mac")):
            self.fail("unauthorized", 401)
        key = self.credentials().get(params["id"])
        if key is None:
            self.fail("unauthorized", 401)
        ext = params.get("ext", "")
        host, port = self._host_port(req)
        normalized = normalized_string(params["ts"], params["nonce"], req.method, self._raw_uri(req),
                                       host, port, ext)
        if not hmac.compare_digest(mac_value(key, normalized).encode(), params["mac"].encode()):
            self.fail("unauthorized", 401)
        body = req.get_data(cache=True)
        sent_hash = (parse_qs(ext, keep_blank_values=True).get("body_hash") or [None])[0]
        if body or sent_hash is not None:
            if sent_hash is None:
                if self.settings.get("require_body_hash", True):
                    self.fail("unauthorized", 401)
            elif not hmac.compare_digest(sent_hash.encode(), body_hash(body).encode()):
                self.fail("unauthorized", 401)
        self._check_fresh(params["id"], params["ts"], params["nonce"])
        return Caller(tenant=params["id"])

    def _check_fresh(self, mac_id: str, ts: str, nonce: str) -> None:
        # Wall clock on purpose: clients sign with real time, and moving the virtual clock must
        # never make a freshly signed request stale.
        window = self.settings.get("ts_window_seconds", 300)
        if not (ts.isascii() and ts.isdigit()):
            self.fail("unauthorized", 401)
        wall = time.time()
        if window and abs(wall - int(ts)) > window:
            self.fail("unauthorized", 401)
        if not self.settings.get("nonce_replay_check", True):
            return
        keep = max(window or 0, 300)
        with self._nonce_lock:
            if len(self._nonces) > 10000:
                for k in [k for k, exp in self._nonces.items() if exp < wall]:
                    del self._nonces[k]
            seen = self._nonces.get((mac_id, ts, nonce))
            if seen is not None and seen >= wall:
                self.fail("unauthorized", 401)
            self._nonces[(mac_id, ts, nonce)] = wall + keep

    @staticmethod
    def _raw_uri(req) -> str:
        raw = req.environ.get("REQUEST_URI") or req.environ.get("RAW_URI")
        if raw:
            if "://" in raw.split("?", 1)[0]:   # absolute-form request target: keep path + query
                raw = "/" + raw.split("://", 1)[1].partition("/")[2]
            return raw
        uri = quote(req.environ.get("SCRIPT_NAME", "") + req.environ.get("PATH_INFO", ""))
        qs = req.environ.get("QUERY_STRING", "")
        return uri + ("?" + qs if qs else "")

    @staticmethod
    def _host_port(req) -> tuple[str, str]:
        host = req.headers.get("Host") or req.environ.get("SERVER_NAME", "")
        default = "443" if req.scheme == "https" else "80"
        if host.startswith("["):                       # IPv6 literal
            end = host.find("]")
            name, rest = host[:end + 1], host[end + 1:]
            return name.lower(), rest[1:] if rest.startswith(":") else default
        name, _, port = host.partition(":")
        return name.lower(), port or default

    # -- errors ------------------------------------------------------------------------------
    def envelope(self, code: str, status: int, description: str | None = None, *, properties=None,
                 data=None) -> Response:
        body = {"error": code, "error_description": description or _DESCRIPTIONS.get(code, code)}
        if properties:
            body["error_properties"] = properties
            body["errors"] = [{"code": "invalid_parameter", "message": m, "field": f}
                              for f, msgs in properties.items() for m in msgs]
        if data:
            body["error_data"] = data
        return self.render_json(body, status)

    def error(self, kind, status, detail=None) -> Response:
        if kind == "unauthorized":
            return self.envelope("unauthorized", 401)
        if kind in ("not_found", "method_not_allowed"):
            # Paysera answers a wrong method on a known URL with not_found too
            return self.envelope("not_found", status)
        if kind in ("malformed", "too_large", "unsupported_media_type"):
            description = detail if isinstance(detail, str) and kind != "malformed" else None
            return self.envelope("invalid_request", status, description)
        if kind == "validation":
            props = detail if isinstance(detail, dict) else {"_schema": [str(detail)]}
            first = next((m for msgs in props.values() for m in msgs), None)
            return self.envelope("invalid_parameters", status, first, properties=props)
        if kind == "invalid_state":
            return self.envelope("invalid_state", status, detail)
        if kind == "declined":
            from .testcards import DECLINE_REASONS
            return self.envelope("invalid_state", status, "Payment was declined",
                                 data={"reason": detail, "reason_description": DECLINE_REASONS.get(detail, detail)})
        if kind == "payment_request_not_unique":
            return self.envelope("payment_request_not_unique", status,
                                 "Payment request with this unique_identifier is already paid")
        if kind == "invalid_cursor":
            return self.envelope("invalid_cursor", status, "Cursor is invalid")
        if kind == "forbidden":
            return self.envelope("forbidden", status)
        if kind == "unavailable":
            return self.envelope("internal_server_error", status, "Service is temporarily unavailable")
        return self.envelope("internal_server_error", status)

    # -- scenarios and hosted pages ----------------------------------------------------------
    def decline_code_valid(self, code: str) -> bool:
        from .testcards import DECLINE_REASONS
        return str(code) in DECLINE_REASONS

    def hosted_action(self, object_id, action):
        from .routes import hosted_action
        return hosted_action(self, object_id, action)




PROVIDER = Paysera
