"""Check real responses of a sandbox app against the providers' OpenAPI documents."""
from __future__ import annotations

import json
import threading

from jsonschema import Draft202012Validator

from simulator.providers.openapi import contract_of, document, openapi_path


def schema_validator(doc: dict, schema: dict) -> Draft202012Validator:
    # "#/components/..." references resolve against the root, so the root carries the components
    return Draft202012Validator({**schema, "components": doc.get("components", {})})


class ContractChecker:
    """Validates each response of a provider operation: status documented, body as documented."""

    def __init__(self):
        self._docs: dict[str, dict] = {}
        self._validators: dict = {}
        self._lock = threading.Lock()
        self.problems: list[str] = []
        self.checked: dict[str, int] = {}   # "provider METHOD /path STATUS" -> count

    def doc(self, app, provider) -> dict:
        with self._lock:
            if provider.name not in self._docs:
                with app.test_request_context():
                    self._docs[provider.name] = document(app, provider, "http://127.0.0.1" + provider.mount)
            return self._docs[provider.name]

    def _validator(self, provider, key, doc, schema):
        with self._lock:
            if (provider.name, key) not in self._validators:
                self._validators[(provider.name, key)] = schema_validator(doc, schema)
            return self._validators[(provider.name, key)]

    def observe(self, app, provider, request, response, scenario_fired: bool) -> None:
        rule = request.url_rule
        if rule is None or not rule.endpoint.startswith(provider.blueprint.name + ".") \
                or contract_of(provider) is None:
            return   # unrouted (the provider's 404/405) or not an operation of the document
        doc = self.doc(app, provider)
        path, method, status = openapi_path(rule.rule, provider.mount), request.method.lower(), response.status_code
        where = f"{provider.name} {method.upper()} {path} {status}"
        answers = doc["paths"][path][method]["responses"]
        spec = answers.get(str(status)) or answers.get(f"{str(status)[0]}XX") or answers.get("default")
        if spec is None:
            if not scenario_fired:   # a scenario's http_error answers whatever status it names
                self._problem(f"{where}: status not in the document")
            return
        with self._lock:
            self.checked[where] = self.checked.get(where, 0) + 1
        if response.direct_passthrough:
            return
        body = response.get_data()
        content = spec.get("content") or {}
        if not content:
            if body:
                self._problem(f"{where}: the document says no body, got {body[:80]!r}")
            return
        media = (response.mimetype or "").lower()
        if media not in content:
            self._problem(f"{where}: content type {media!r} is not one of {sorted(content)}")
            return
        schema = content[media].get("schema")
        if schema is None or not media.endswith("json"):
            return
        try:
            data = json.loads(body)
        except ValueError:
            self._problem(f"{where}: body is not JSON: {body[:80]!r}")
            return
        validator = self._validator(provider, (path, method, status, media), doc, schema)
        for error in validator.iter_errors(data):
            self._problem(f"{where}: {'/'.join(map(str, error.absolute_path)) or '<body>'}: {error.message[:300]}")

    def _problem(self, text: str) -> None:
        with self._lock:
            if text not in self.problems:
                self.problems.append(text)

    def install_on_new_apps(self):
        """Install on every app ``simulator.create_app`` makes from now on; returns the undo."""
        import simulator
        create_app = simulator.create_app

        def checked_app(*args, **kwargs):
            app = create_app(*args, **kwargs)
            self.install(app)
            return app
        simulator.create_app = checked_app
        return lambda: setattr(simulator, "create_app", create_app)

    def install(self, app) -> None:
        """Check every response ``app`` gives from now on (registered last, so it runs first)."""
        from flask import g, request
        sandbox = app.extensions["sandbox"]

        @app.after_request
        def _check(response):
            provider = g.get("sandbox_provider")
            if provider is not None and provider.name in sandbox.providers:
                self.observe(app, provider, request, response, bool(g.get("sandbox_rules")))
            return response
