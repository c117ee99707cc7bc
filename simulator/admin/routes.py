"""The admin API under /_sandbox (design.md section 3); the browser guard is in ``common``, the
dashboard in ``dashboard``. The dashboard's forms call the same functions as these handlers."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app, jsonify, request

from ..core.clock import RANGE_TEXT, iso_z, parse_duration, parse_instant
from ..core.documents import DocumentError, load
from ..providers.shape import Refusal
from .common import admin, bad_request, body_dict, int_arg, known_keys, sandbox, tenant_of
from .timeline import delivery


@admin.get("/health")
def health():
    sb = sandbox()
    return jsonify({"status": "ok", "providers": list(sb.providers), "version": sb.version})


@admin.post("/reset")
def reset():
    body = body_dict()
    try:
        known_keys(body, ("tenant",))
        tenant = tenant_of(body)
    except ValueError as exc:
        return bad_request(str(exc))
    return jsonify(reset_sandbox(tenant))


def reset_sandbox(tenant):
    sandbox().reset(tenant)
    return {"status": "reset", "tenant": tenant}


@admin.get("/clock")
def clock_get():
    try:   # as POST reads it: an empty tenant is not "every tenant" there either
        tenant = tenant_of(request.args)
    except ValueError as exc:
        return bad_request(str(exc))
    sb = sandbox()
    return jsonify({"now": iso_z(sb.clock.now(tenant), 3), "tenant": tenant, "frozen": sb.clock.frozen})


@admin.post("/clock")
def clock_move():
    body = body_dict()
    try:
        return jsonify(move_clock(body))
    except ValueError as exc:
        return bad_request(str(exc))


_MOVES = ("advance", "advance_seconds", "set")
_CLOCK_FIELDS = (*_MOVES, "tenant")


def move_clock(body: dict) -> dict:
    """Advance or set the virtual clock, running everything that fell due; ValueError on bad input."""
    known_keys(body, _CLOCK_FIELDS)
    tenant = tenant_of(body)
    moves = [k for k in _MOVES if k in body]
    if len(moves) > 1:   # one would be silently ignored
        raise ValueError(f"give only one of advance, advance_seconds, set (got {', '.join(moves)})")
    sb = sandbox()
    try:
        if "advance" in body:
            delta = parse_duration(body["advance"])
        elif "advance_seconds" in body:
            seconds = body["advance_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                raise ValueError("advance_seconds must be a number")
            delta = timedelta(seconds=seconds)
        elif "set" in body:
            target = parse_instant(body["set"])
        else:
            raise ValueError("give one of advance, advance_seconds, set")
    except OverflowError:   # advance_seconds beyond what a timedelta holds
        raise ValueError(f"the clock must stay within {RANGE_TEXT}") from None
    # the reading, the range check and the move as one: a second move checked against the same
    # reading could take the clock past its range, or a second set apply on top of the first
    with sb.timers.moving():
        if "set" in body:
            delta = target - sb.clock.now(tenant)
        sb.clock.check_move(delta, tenant)   # before any timer runs
        sb.timers.advance(delta, tenant)
        return {"now": iso_z(sb.clock.now(tenant), 3), "tenant": tenant}


@admin.get("/requests")
def requests_journal():
    try:
        limit = int_arg(request.args, "limit")
    except ValueError as exc:
        return bad_request(str(exc))
    entries = sandbox().journal.entries(request.args.get("provider"), request.args.get("tenant"), limit)
    return jsonify({"requests": entries})


@admin.get("/webhooks")
def webhooks():
    sb = sandbox()
    items = sb.outbox.list(request.args.get("provider"), request.args.get("tenant"),
                           request.args.get("event_type"))
    return jsonify({"webhooks": [delivery(sb.outbox.public(d)) for d in items]})


@admin.post("/webhooks/flush")
def webhooks_flush():
    return jsonify({"attempted": [delivery(d) for d in sandbox().outbox.flush()]})


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
        merged = sb.config.merged(data, "<request body>", lines)   # every key checked, start-up ones too
        # the seed and the clock's start are read at start-up only: a running id stream started
        # again would hand out ids it already gave. Kept as they run, not shown as if applied
        ignored = [k for k in ("seed", "clock") if data.get(k) is not None]
        if ignored:
            merged = sb.config.merged({k: v for k, v in data.items() if k not in ignored}, "<request body>", lines)
    except DocumentError as exc:
        return jsonify(exc.as_dict()), 400
    sb.config = merged
    for name, provider in sb.providers.items():
        provider.configure(merged.providers.get(name, {}))
    if "webhooks" in data:
        sb.set_webhooks_mode(merged.webhooks)
    if "webhook_timeout" in data:
        sb.outbox.timeout = float(merged.document["webhook_timeout"])
    body = merged.masked()
    if ignored:
        body["note"] = (f"{' and '.join(ignored)} not changed: they take effect at start-up (--config); move the "
                        "clock with POST /_sandbox/clock, and POST /_sandbox/reset replays from the seed")
    return jsonify(body)


@admin.post("/hosted/<provider_name>/<object_id>")
def hosted(provider_name, object_id):
    return hosted_step(provider_name, object_id, body_dict())


def hosted_step(provider_name: str, object_id: str, body: dict):
    """What the customer does on a hosted page; the provider's response (or a 400/404 of ours)."""
    provider = sandbox().providers.get(provider_name)
    if provider is None:
        return jsonify({"error": f"unknown provider {provider_name}"}), 404
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
    # one record in a state file, as a provider request is: a kill part-way leaves none of it, not
    # an event announcing a payment the store still shows pending
    with sandbox().state.together():
        try:
            return provider.hosted_action(object_id, body)
        except Refusal as exc:
            return provider.refused(exc)


@admin.get("/keys/<provider_name>")
def keys(provider_name):
    provider = sandbox().providers.get(provider_name)
    pem = provider.public_key_pem() if provider else None
    if pem is None:
        return jsonify({"error": f"{provider_name} does not sign with an asymmetric key"}), 404
    return current_app.response_class(pem, mimetype="application/x-pem-file")
