"""The admin API under /_sandbox (design.md section 3) and the dashboard.

It has no authentication, so what keeps a web page in the user's browser from driving it is that
a browser cannot send a cross-site request the API accepts: a state-changing call with an
``Origin`` of another site is refused (403), and one whose body is typed as something a plain
HTML form or a simple fetch can send (form, multipart, text/plain) is refused (415).
"""
from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, render_template, request

from ..core import inputs
from ..core.clock import iso_z, parse_duration, parse_instant
from ..core.documents import DocumentError, load

admin = Blueprint("sandbox_admin", __name__, template_folder="templates")

_DOCUMENT_TYPES = ("application/json", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


class Refused(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


@admin.errorhandler(Refused)
def _refused(exc: Refused):
    return jsonify({"error": exc.message}), exc.status


@admin.before_request
def _same_origin_only():
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    origin = request.headers.get("Origin")
    if origin is not None and _host_of(origin) != request.host.lower():
        raise Refused(f"cross-site request from {origin} refused: the admin API has no authentication", 403)
    mimetype = request.mimetype
    if mimetype and not (mimetype in _DOCUMENT_TYPES or mimetype.endswith(("+json", "+yaml"))):
        raise Refused(f"Content-Type {mimetype} is not accepted: send application/json "
                      "(or application/yaml for config and scenarios)", 415)


def _host_of(origin: str) -> str | None:
    try:
        return urlsplit(origin).netloc.lower() or None  # "null" (sandboxed frames, files) has none
    except ValueError:
        return None


def sandbox():
    return current_app.extensions["sandbox"]


def bad_request(message: str, **extra):
    return jsonify({"error": message, **extra}), 400


def body_dict() -> dict:
    """The JSON object in the body ({} when empty), or a 400 naming what is wrong with it."""
    raw = request.get_data()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise Refused(f"nested deeper than {inputs.MAX_DEPTH} levels") from None
    problem = inputs.json_problem(raw, data)
    if problem:
        raise Refused(problem)
    if not isinstance(data, dict):
        raise Refused("body must be a JSON object")
    tenant = data.get("tenant")
    if tenant is not None and not isinstance(tenant, str):
        raise Refused("tenant must be a string")
    return data


@admin.get("/health")
def health():
    sb = sandbox()
    return jsonify({"status": "ok", "providers": list(sb.providers), "version": sb.version})


@admin.post("/reset")
def reset():
    body = body_dict()
    sandbox().reset(body.get("tenant"))
    return jsonify({"status": "reset", "tenant": body.get("tenant")})


@admin.get("/clock")
def clock_get():
    tenant = request.args.get("tenant")
    sb = sandbox()
    return jsonify({"now": iso_z(sb.clock.now(tenant), 3), "tenant": tenant, "frozen": sb.clock.frozen})


@admin.post("/clock")
def clock_move():
    body = body_dict()
    sb = sandbox()
    tenant = body.get("tenant")
    now = sb.clock.now(tenant)
    try:
        if "advance" in body:
            delta = parse_duration(body["advance"])
        elif "advance_seconds" in body:
            seconds = body["advance_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                raise ValueError("advance_seconds must be a number")
            delta = timedelta(seconds=seconds)
        elif "set" in body:
            delta = parse_instant(body["set"]) - now
        else:
            raise ValueError("give one of advance, advance_seconds, set")
        now + delta  # noqa: B018  (a move past year 9999 is refused before any timer runs)
    except (ValueError, OverflowError) as exc:
        return bad_request(str(exc) if isinstance(exc, ValueError) else "the clock would leave years 1-9999")
    sb.timers.advance(delta, tenant)
    return jsonify({"now": iso_z(sb.clock.now(tenant), 3), "tenant": tenant})


def _int_arg(name):
    value = request.args.get(name)
    if value is None:
        return None
    if not value.isdigit():
        raise ValueError(f"{name} must be a positive integer")
    return int(value)


@admin.get("/requests")
def requests_journal():
    try:
        limit = _int_arg("limit")
    except ValueError as exc:
        return bad_request(str(exc))
    entries = sandbox().journal.entries(request.args.get("provider"), request.args.get("tenant"), limit)
    return jsonify({"requests": entries})


@admin.get("/webhooks")
def webhooks():
    sb = sandbox()
    items = sb.outbox.list(request.args.get("provider"), request.args.get("tenant"),
                           request.args.get("event_type"))
    return jsonify({"webhooks": [sb.outbox.public(d) for d in items]})


@admin.post("/webhooks/flush")
def webhooks_flush():
    return jsonify({"attempted": sandbox().outbox.flush()})


@admin.get("/config")
def config_get():
    sb = sandbox()
    return jsonify(sb.config.masked())


@admin.put("/config")
def config_put():
    sb = sandbox()
    try:
        data, lines = load(request.get_data(), "<request body>")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise DocumentError("<request body>", 1, "a config document is a mapping")
        merged = sb.config.merged(data, "<request body>", lines)
    except DocumentError as exc:
        return jsonify(exc.as_dict()), 400
    sb.config = merged
    for name, provider in sb.providers.items():
        provider.configure(merged.providers.get(name, {}))
    if "webhooks" in data:
        sb.set_webhooks_mode(merged.webhooks)
    if "webhook_timeout" in data:
        sb.outbox.timeout = float(merged.document["webhook_timeout"])
    return jsonify(merged.masked())


@admin.post("/hosted/<provider_name>/<object_id>")
def hosted(provider_name, object_id):
    sb = sandbox()
    provider = sb.providers.get(provider_name)
    if provider is None:
        return jsonify({"error": f"unknown provider {provider_name}"}), 404
    body = body_dict()
    outcome = body.get("outcome", "approve")
    if outcome not in ("approve", "decline", "cancel"):
        return bad_request("outcome must be approve, decline or cancel")
    if body.get("three_ds", "pass") not in ("pass", "fail"):
        return bad_request("three_ds must be pass or fail")
    card = body.get("card")
    if card is not None and not isinstance(card, dict):
        return bad_request("card must be an object")
    if "recurring_consent" in body and not isinstance(body["recurring_consent"], bool):
        return bad_request("recurring_consent must be true or false")
    return provider.hosted_action(object_id, body)


@admin.get("/keys/<provider_name>")
def keys(provider_name):
    provider = sandbox().providers.get(provider_name)
    pem = provider.public_key_pem() if provider else None
    if pem is None:
        return jsonify({"error": f"{provider_name} does not sign with an asymmetric key"}), 404
    return current_app.response_class(pem, mimetype="application/x-pem-file")


@admin.get("/")
def dashboard():
    sb = sandbox()
    base = request.host_url.rstrip("/")
    return render_template(
        "dashboard.html", sandbox=sb, base=base, now=iso_z(sb.clock.now(), 3),
        requests=list(reversed(sb.journal.entries(limit=50))),
        webhooks=[sb.outbox.public(d) for d in reversed(sb.outbox.list()[-50:])],
        tenants=sb.tenants.list(), scenarios=sb.scenarios.summary() if hasattr(sb.scenarios, "summary") else [])


from . import scenarios  # noqa: E402,F401  (registers the /scenarios routes on this blueprint)
