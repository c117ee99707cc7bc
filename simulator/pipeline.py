"""The request pipeline around every provider handler.

before: find the provider by mount -> authenticate (unless the view needs no credentials) ->
scenario match (latency, dropped connection, injected HTTP error; the rest travels as Effects) ->
handler -> errors rendered in the provider's envelope -> journal.
"""
from __future__ import annotations

import logging
import time
import traceback

from flask import Flask, g, request
from werkzeug.exceptions import HTTPException

from .core import effects
from .core.runtime import Sandbox
from .core.wsgi import DROP_KEY
from .providers.shape import Refusal

log = logging.getLogger("simulator")

_WRITES = frozenset(("POST", "PUT", "PATCH", "DELETE"))
_KINDS = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
          400: "malformed", 401: "unauthorized"}


def install(app: Flask, sandbox: Sandbox) -> None:
    # a mount is usually one path segment: then the provider is one dict lookup
    by_mount = {provider.mount: provider for provider in sandbox.providers.values()}
    deep = [provider for provider in sandbox.providers.values() if provider.mount.count("/") > 1]

    def provider_for_path(path: str):
        end = path.find("/", 1)
        found = by_mount.get(path if end < 0 else path[:end])
        if found is None:
            found = next((p for p in deep if path == p.mount or path.startswith(p.mount + "/")), None)
        return found

    @app.before_request
    def _pipeline():
        # the request and g proxies cost a lookup on every touch: this path touches them once
        req, ctx = request._get_current_object(), g._get_current_object()
        ctx.sandbox_rules = ()
        provider = provider_for_path(req.path)
        ctx.sandbox_provider = provider
        if provider is None:
            return None
        sandbox.state.begin()
        if req.mimetype == "application/x-www-form-urlencoded":
            req.get_data(cache=True)  # else form parsing consumes it and the journal (masked) misses it
        caller = None
        if req.routing_exception is not None:
            # unknown path or method below a mount: the provider's 404/405 follows, but scenario
            # HTTP-layer effects (latency, dropped connection, http_error) still apply to it
            try:
                caller = ctx.sandbox_caller = provider.authenticate(req)
            except Exception:  # no usable credential: match as no tenant, answer the 404 anyway
                pass
        elif not getattr(app.view_functions.get(req.endpoint), "_sandbox_no_auth", False):
            caller = ctx.sandbox_caller = provider.authenticate(req)
            sandbox.tenants.ensure(provider.name, caller.tenant, sandbox.clock.now)
        if req.method in _WRITES and sandbox.outbox.full():
            # refused before anything is created: an accepted event is never dropped
            return provider.error("unavailable", 503)
        decision = sandbox.scenarios.match(provider, caller.tenant if caller else None, req)
        if decision is None:
            return None
        ctx.sandbox_rules = tuple(decision.effects.rules)
        ctx.sandbox_effects_token = effects.install(decision.effects)
        if decision.latency_ms:
            time.sleep(decision.latency_ms / 1000.0)
        if decision.drop_connection == "before":
            req.environ[DROP_KEY] = True
            return provider.render_json({}, 500)
        if decision.drop_connection == "after":
            req.environ[DROP_KEY] = True
        if decision.http_error is not None:
            status = int(decision.http_error.get("status", 503))
            body = decision.http_error.get("body")
            if body is None:
                return provider.error("unavailable", status)
            return provider.render_json(body, status)
        return None

    @app.errorhandler(Refusal)
    def _refusal(exc: Refusal):
        provider = provider_for_path(request.path)
        if provider is None:
            return _unexpected(exc)
        return provider.refused(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        provider = provider_for_path(request.path)
        if provider is None:
            return app.json.response({"error": exc.name, "detail": exc.description}), exc.code
        kind = _KINDS.get(exc.code, "malformed" if exc.code < 500 else "internal")
        return provider.error(kind, exc.code, exc.description)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.error("unexpected error on %s %s\n%s", request.method, request.path, traceback.format_exc())
        provider = provider_for_path(request.path)
        if provider is None:
            return app.json.response({"error": "internal error", "detail": type(exc).__name__}), 500
        return provider.error("internal", 500)

    @app.after_request
    def _journal(response):
        ctx = g._get_current_object()
        provider = ctx.get("sandbox_provider")
        if provider is None:
            return response
        req = request._get_current_object()
        response = provider.decorate(response)
        caller = ctx.get("sandbox_caller")
        tenant = caller.tenant if caller else None
        body = b"" if response.direct_passthrough else response.get_data()
        try:
            request_body = req.get_data(cache=True)
        except HTTPException:  # too large to read: journal it without the body
            request_body = b""
        sandbox.journal.record(
            provider=provider.name, tenant=tenant, method=req.method, path=req.full_path.rstrip("?"),
            status=response.status_code, at=sandbox.clock.now(tenant).isoformat(),
            rules=ctx.get("sandbox_rules", ()),
            request_body=request_body,
            request_type=req.content_type, response_body=body, response_type=response.content_type,
            verified=caller.verified if caller else True)
        sandbox.state.commit()   # before the answer leaves: a client never sees a change a kill could lose
        return response

    @app.teardown_request
    def _uninstall(_exc):
        sandbox.state.commit()   # a request that failed past its answer still keeps what memory holds
        token = g.pop("sandbox_effects_token", None)
        if token is not None:
            effects.uninstall(token)
