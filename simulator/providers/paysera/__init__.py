"""Paysera Checkout REST API ("Recurring Billing"): the Provider object and MAC authentication."""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import string
import threading
import time
from collections import deque
from datetime import timedelta
from urllib.parse import parse_qs, quote

from marshmallow import Schema, fields, validate

from ...core.signing import hmac_sha256
from ...core.webhooks import exponential_schedule
from ..base import Caller, Provider
from ..shape import ErrorSpec, Refusal
from .machine import Machine
from .routes import bp, hosted_action
from .testcards import DECLINE_REASONS

# Built in so the sandbox works without a config file; printed at start.
DEFAULT_MAC_ID = "sandbox-mac-id"
DEFAULT_MAC_KEY = "sandbox-mac-key-change-me-0123456789"

_INVALID_REQUEST = "Request content is invalid"
_INTERNAL = "Unexpected internal system error"
ERRORS = {
    "unauthorized": ErrorSpec(401, "unauthorized", "You have not provided any credentials or they are invalid",
                              fixed=True),
    "not_found": ErrorSpec(404, "not_found", "Resource was not found", fixed=True),
    # Paysera answers a wrong method on a known URL with not_found too
    "method_not_allowed": ErrorSpec(405, "not_found", "Resource was not found", fixed=True),
    "malformed": ErrorSpec(400, "invalid_request", _INVALID_REQUEST, fixed=True),
    "too_large": ErrorSpec(413, "invalid_request", _INVALID_REQUEST),
    "unsupported_media_type": ErrorSpec(415, "invalid_request", _INVALID_REQUEST),
    "validation": ErrorSpec(400, "invalid_parameters", "Some required parameter is missing or it's format is invalid"),
    "invalid_state": ErrorSpec(409, "invalid_state",
                               "Requested action cannot be made to the current state of resource"),
    "declined": ErrorSpec(409, "invalid_state", "Payment was declined", fixed=True),
    "payment_request_not_unique": ErrorSpec(409, "payment_request_not_unique",
                                            "Payment request with this unique_identifier is already paid"),
    "invalid_cursor": ErrorSpec(400, "invalid_cursor", "Cursor is invalid"),
    "unavailable": ErrorSpec(503, "internal_server_error", "Service is temporarily unavailable", fixed=True),
    "internal": ErrorSpec(500, "internal_server_error", _INTERNAL, fixed=True),
}

# re.ASCII: only ASCII whitespace separates the parameters, as in HTTP; Unicode \s would also
# take the NBSP and NEL that a header's latin-1 bytes can decode to.
_PARAM = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*"([^"]*)"\s*(?:,|\Z)', re.ASCII)
_SCHEME = re.compile(r"\s*MAC\s+", re.IGNORECASE | re.ASCII)
# RFC 3986 pchar besides the unreserved characters (which quote() never escapes): what a client
# leaves unescaped in a path
_PATH_SAFE = "/:@!$&'()*+,;="


def parse_mac_header(value: str) -> dict | None:
    """``MAC id="..", ts="..", ...`` -> {name: value}; None if it is not a well-formed MAC header.

    A quoted-string scan, never a split on commas or spaces: Paysera's nonces may contain both.
    """
    m = _SCHEME.match(value or "")
    if not m:
        return None
    params: dict[str, str] = {}
    pos = m.end()
    text = value.rstrip(string.whitespace)   # the ASCII whitespace only
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
    return base64.b64encode(hmac_sha256(key.encode(), normalized.encode())).decode()


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
    error_table = ERRORS
    machine_class = Machine
    decline_codes = DECLINE_REASONS
    hosted_action = hosted_action
    # 1 min, doubling, capped at 6 h, while the whole run stays within 7 days
    webhook_schedule = exponential_schedule(timedelta(minutes=1), timedelta(hours=6), timedelta(days=7))

    def __init__(self, sandbox) -> None:
        super().__init__(sandbox)
        self._nonces: dict[tuple[str, str, str], float] = {}   # (id, ts, nonce) -> wall time it expires
        self._nonce_order: deque[tuple[float, tuple[str, str, str]]] = deque()
        self._nonce_lock = threading.Lock()

    # -- credentials -------------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        configured = dict(self.settings.get("credentials") or {})
        if not configured or self.settings.get("include_default_credentials", False):
            configured.setdefault(DEFAULT_MAC_ID, DEFAULT_MAC_KEY)
        return configured

    def startup_lines(self, base_url: str) -> list[str]:
        lines = super().startup_lines(base_url)
        for mac_id, key in self.credentials().items():
            lines.append(f"{'':<13} MAC id {mac_id}  key {key}  (hmac-sha-256)")
        return lines

    # -- MAC access authentication -----------------------------------------------------------
    def authenticate(self, req) -> Caller:
        params = parse_mac_header(req.headers.get("Authorization", ""))
        if params is None or not all(params.get(k) for k in ("id", "ts", "nonce", "mac")):
            raise Refusal("unauthorized")
        key = self.credentials().get(params["id"])
        if key is None:
            raise Refusal("unauthorized")
        ext = params.get("ext", "")
        host, port = self._host_port(req)
        normalized = normalized_string(params["ts"], params["nonce"], req.method, self._raw_uri(req),
                                       host, port, ext)
        if not hmac.compare_digest(mac_value(key, normalized).encode(), params["mac"].encode()):
            raise Refusal("unauthorized")
        body = req.get_data(cache=True)
        sent_hash = (parse_qs(ext, keep_blank_values=True).get("body_hash") or [None])[0]
        if body or sent_hash is not None:
            if sent_hash is None:
                if self.settings.get("require_body_hash", True):
                    raise Refusal("unauthorized")
            elif not hmac.compare_digest(sent_hash.encode(), body_hash(body).encode()):
                raise Refusal("unauthorized")
        self._check_fresh(params["id"], params["ts"], params["nonce"])
        return Caller(tenant=params["id"])

    def _check_fresh(self, mac_id: str, ts: str, nonce: str) -> None:
        # Wall clock on purpose: clients sign with real time, and moving the virtual clock must
        # never make a freshly signed request stale.
        window = self.settings.get("ts_window_seconds", 300)
        if not (ts.isascii() and ts.isdigit()):
            raise Refusal("unauthorized")
        wall = time.time()
        # more than 15 digits is millions of years from any clock, and int() refuses a digit run
        # past 4300 with a ValueError
        if window and (len(ts.lstrip("0")) > 15 or abs(wall - int(ts)) > window):
            raise Refusal("unauthorized")
        if not self.settings.get("nonce_replay_check", True):
            return
        keep = max(window or 0, 300)
        key = (mac_id, ts, nonce)
        with self._nonce_lock:
            nonces, order = self._nonces, self._nonce_order
            # nonces are queued in the order they were seen, so the expired ones are at the front:
            # a request drops those and never walks the thousands still in the window
            while order and order[0][0] < wall:
                expires, old = order.popleft()
                if nonces.get(old) == expires:
                    del nonces[old]
            seen = nonces.get(key)
            if seen is not None and seen >= wall:
                raise Refusal("unauthorized")
            nonces[key] = wall + keep
            order.append((wall + keep, key))

    @staticmethod
    def _raw_uri(req) -> str:
        """The request URI the client signed: path and query as sent, escapes and all.

        waitress (``REQUEST_URI``), werkzeug's server and test client (both) and gunicorn
        (``RAW_URI``) hand it over undecoded. A server that gives neither (wsgiref) leaves only
        the decoded ``PATH_INFO``; that is quoted back from its bytes (WSGI's latin-1 string),
        in the form clients send: unreserved characters, sub-delimiters, ``:`` and ``@`` as
        they are, anything else as an upper-case escape.
        """
        environ = req.environ
        raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
        if raw:
            if "://" in raw.split("?", 1)[0]:   # absolute-form request target: keep path + query
                raw = "/" + raw.split("://", 1)[1].partition("/")[2]
            return raw
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        try:
            octets = path.encode("latin-1")
        except UnicodeEncodeError:              # not a PEP 3333 string: take it as text
            octets = path.encode("utf-8", "surrogateescape")
        qs = environ.get("QUERY_STRING", "")   # never decoded by the server
        return quote(octets, safe=_PATH_SAFE) + ("?" + qs if qs else "")

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
    def envelope(self, spec, status, detail, fields) -> dict:
        pairs = detail if isinstance(detail, list) else None
        body = {"error": spec.code, "error_description": pairs[0][1] if pairs else spec.text(detail)}
        if pairs:
            properties: dict[str, list[str]] = {}
            for path, message in pairs:
                properties.setdefault(path, []).append(message)
            body["error_properties"] = properties
            body["errors"] = [{"code": "invalid_parameter", "message": m, "field": f}
                              for f, msgs in properties.items() for m in msgs]
        if "reason" in fields:
            reason = fields["reason"]
            body["error_data"] = {"reason": reason, "reason_description": DECLINE_REASONS.get(reason, reason)}
        return body


PROVIDER = Paysera
