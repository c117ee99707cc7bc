"""PSP Sandbox: a local simulator of payment providers' recurring-payment APIs."""
from __future__ import annotations

from flask import Flask

from .lazy import LazyRule, import_marshmallow

import_marshmallow()   # before anything below imports it
from . import pipeline  # noqa: E402
from .config import Config  # noqa: E402
from .core.runtime import Sandbox  # noqa: E402
from .core.scenarios import ScenarioEngine  # noqa: E402
from .core.wsgi import ConnectionDropper  # noqa: E402
from .providers import provider_classes  # noqa: E402

__version__ = "0.1.0"
MAX_BODY = 1024 * 1024


class _App(Flask):
    url_rule_class = LazyRule
    provider_lane = None   # set by pipeline.install

    def wsgi_app(self, environ, start_response):
        lane = self.provider_lane
        if lane is None:
            return super().wsgi_app(environ, start_response)
        return lane(environ, start_response)


def create_app(config: Config | dict | None = None, *, state_path: str | None = None,
               scenario_files: list[str] | None = None, extra_providers: list[type] | None = None) -> Flask:
    """Build the app. ``config`` is a Config or a config document (section 4 of design.md).

    ``extra_providers``: Provider classes mounted after the registered ones (a provider under
    development, or a test's own), with no config section.
    """
    if not isinstance(config, Config):
        config = Config.from_document(config or {}, source="<config>")
    classes = provider_classes() + list(extra_providers or [])
    engine_docs = ScenarioEngine.read_files(scenario_files or [], providers=[cls.name for cls in classes])
    seed = config.seed
    clock_start = config.clock_start
    for doc in engine_docs:  # a scenario's seed and clock take effect when loaded at start-up
        seed = doc.get("seed", seed)
        clock_start = (doc.get("clock") or {}).get("start", clock_start)

    sandbox = Sandbox(seed=seed, clock_start=clock_start, webhooks_mode=config.webhooks,
                      state_path=state_path)
    sandbox.config = config
    sandbox.version = __version__
    for cls in classes:
        provider = cls(sandbox)
        provider.configure(config.providers.get(cls.name, {}))
        sandbox.providers[cls.name] = provider
    sandbox.scenarios = ScenarioEngine(sandbox)
    for doc in engine_docs:
        sandbox.scenarios.add(doc, at_start=True)
    sandbox.finish_reset()

    app = _App(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.json.sort_keys = False
    app.extensions["sandbox"] = sandbox
    for provider in sandbox.providers.values():
        app.register_blueprint(provider.blueprint, url_prefix=provider.mount)
    from .admin import dashboard, objects, routes, scenarios  # noqa: F401  (each registers its views)
    from .admin.common import admin
    app.register_blueprint(admin, url_prefix="/_sandbox")
    # a sibling blueprint, so the admin API's JSON-only guard does not apply to the HTML forms
    app.register_blueprint(dashboard.bp, url_prefix="/_sandbox")
    from .providers.openapi import register as register_openapi
    register_openapi(app, sandbox)

    pipeline.install(app, sandbox)
    app.wsgi_app = ConnectionDropper(app.wsgi_app)
    return app
