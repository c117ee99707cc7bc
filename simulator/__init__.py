"""PSP Sandbox: a local simulator of payment providers' recurring-payment APIs."""
from __future__ import annotations

import logging
import time
import traceback

from flask import Flask, g, request
from werkzeug.exceptions import HTTPException

from .config import Config
from .core import effects
from .core.runtime import Sandbox
from .core.scenarios import ScenarioEngine
from .core.wsgi import DROP_KEY, ConnectionDropper
from .providers import provider_classes
from .providers.base import ProviderError

__version__ = "0.1.0"
MAX_BODY = 1024 * 1024

log = logging.getLogger("simulator")

_KINDS = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
          400: "malformed", 401: "unauthorized"}


def create_app(config: Config | dict | None = None, *, state_path: str | None = None,
               scenario_files: list[str] | None = None) -> Flask:
    """Build the app. ``config`` is a Config or a config document (section 4 of design.md)."""
    if not isinstance(config, Config):
        config = Config.from_document(config or {}, source="<config>")
    engine_docs = ScenarioEngine.read_files(scenario_files or [])
    seed = config.seed
    clock_start = config.clock_start
    for doc in engine_docs:  # a scenario's seed and clock take effect when loaded at start-up
        seed = doc.get("seed", seed)
        clock_start = (doc.get("clock") or {}).get("start", clock_start)

    sandbox = Sandbox(seed=seed, clock_start=clock_start, webhooks_mode=config.webhooks,
                      state_path=state_path)
    sandbox.config = config
    sandbox.version = __version__
    for cls in provider_classes():
        provider = cls(sandbox)
        provider.configure(config.providers.get(cls.name, {}))
        sandbox.providers[cls.name] = provider
    sandbox.scenarios = ScenarioEngine(sandbox)
    for doc in engine_docs:
        sandbox.scenarios.add(doc)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.json.sort_keys = False
    app.extensions["sandbox"] = sandbox
    for provider in sandbox.providers.values():
        app.register_blueprint(provider.blueprint, url_prefix=provider.mount)
    from .admin.routes import admin
    app.register_blueprint(admin, url_prefix="/_sandbox")
    from .providers.openapi import register as register_openapi
    register_openapi(app, sandbox)

    def provider_for_path(path: str):
        for provider in sandbox.providers.values():
            if path == provider.mount or path.startswith(provider.mount + "/"):
                return provider
        return None

    @app.before_request
    def _pipeline():
        g.sandbox_started = time.monotonic()
        g.sandbox_rules = []
        provider = provider_for_path(request.path)
        g.sandbox_provider = provider
        if provider is None:
            return None
        view = app.view_functions.get(request.endpoint)
        if request.routing_exception is not None:
            # unknown path or method below a mount: the provider's 404/405 follows, but scenario
            # HTTP-layer effects (latency, dropped connection, http_error) still apply to it
            try:
                g.sandbox_caller = provider.authenticate(request)
            except Exception:  # no usable credential: match as no tenant, answer the 404 anyway
                pass
        elif not getattr(view, "_sandbox_public", False):
            g.sandbox_caller = provider.authenticate(request)
            sandbox.tenants.ensure(provider.name, g.sandbox_caller.tenant, sandbox.clock.now(g.sandbox_caller.tenant))
        caller = getattr(g, "sandbox_caller", None)
        decision = sandbox.scenarios.match(provider, caller.tenant if caller else None, request)
        if decision is None:
            return None
        g.sandbox_rules = list(decision.effects.rules)
        g.sandbox_effects_token = effects.install(decision.effects)
        if decision.latency_ms:
            time.sleep(decision.latency_ms / 1000.0)
        if decision.drop_connection == "before":
            request.environ[DROP_KEY] = True
            return provider.render_json({}, 500)
        if decision.drop_connection == "after":
            request.environ[DROP_KEY] = True
        if decision.http_error is not None:
            status = int(decision.http_error.get("status", 503))
            body = decision.http_error.get("body")
            if body is None:
                return provider.error("unavailable", status)
            return provider.render_json(body, status)
        return None

    @app.errorhandler(ProviderError)
    def _provider_error(exc: ProviderError):
        return exc.response

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
        provider = g.get("sandbox_provider")
        if provider is None:
            return response
        response = provider.decorate(response)
        caller = g.get("sandbox_caller")
        tenant = caller.tenant if caller else None
        body = b"" if response.direct_passthrough else response.get_data()
        try:
            request_body = request.get_data(cache=True)
        except HTTPException:  # too large to read: journal it without the body
            request_body = b""
        sandbox.journal.record(
            provider=provider.name, tenant=tenant, method=request.method, path=request.full_path.rstrip("?"),
            status=response.status_code, at=sandbox.clock.now(tenant).isoformat(),
            rules=g.get("sandbox_rules", []),
            request_body=request_body,
            request_type=request.content_type, response_body=body, response_type=response.content_type,
            verified=caller.verified if caller else True)
        return response

    @app.teardown_request
    def _uninstall(_exc):
        token = g.pop("sandbox_effects_token", None)
        if token is not None:
            effects.uninstall(token)

    app.wsgi_app = ConnectionDropper(app.wsgi_app)
    return app
