"""OpenAPI 3.1 documents of the simulated surfaces, generated from each provider's contract.

A provider package that has a ``contract`` module (``CONTRACT = Contract(...)``) gets
``GET <mount>/openapi.json`` (no credentials) and a readable page at ``/_sandbox/openapi/<name>``.
The request schemas are the marshmallow schemas the views load; the response schemas mirror what
the views return. The blueprint's URL rules are the list of operations, so a routed endpoint the
contract does not describe is an error, not a silent gap.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, abort, current_app, render_template_string, request
from marshmallow.fields import Field

from ..core.memo import Memo
from .base import no_auth

OPENAPI_VERSION = "3.1.0"
_PAGE = Path(__file__).with_name("templates") / "openapi.html"
_METHODS = ("get", "post", "put", "patch", "delete")
_WRITES = ("post", "put", "patch", "delete")
BUSY = "the sandbox's webhook outbox is full: nothing was done, retry later"


@dataclass
class Body:
    """One response: a marshmallow schema (class or instance) for a JSON body, or no body.

    ``media`` names another content type (``text/html`` for hosted pages, where ``schema`` is None).
    """
    description: str
    schema: Any = None                  # or a tuple of schemas: one of them
    media: str = "application/json"
    headers: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)


@dataclass
class Operation:
    summary: str
    responses: dict[int, Body]
    request: Any = None                 # marshmallow schema of the JSON body
    example: Any = None                 # a request body that works, shown in the document
    query: Any = None                   # marshmallow schema of the query string
    headers: dict = field(default_factory=dict)   # request header name -> description
    hosted: bool = False                # an HTML page for the customer's browser, not an API call
    tags: tuple = ()
    description: str = ""


@dataclass
class Contract:
    title: str
    version: str
    description: str
    security_schemes: dict
    operations: dict[str, Operation]    # keyed by the blueprint's endpoint (view function) name
    common: dict[int, Body] = field(default_factory=dict)   # answers any authenticated call may get
    webhooks: dict[str, tuple[str, Any]] = field(default_factory=dict)   # event -> (description, schema)
    field_types: dict = field(default_factory=dict)   # custom marshmallow field class -> (type, format)
    webhook_headers: dict = field(default_factory=dict)   # header name -> description
    # the 503 any write may get while the sandbox's webhook outbox is full (the pipeline refuses
    # it before anything is created, with or without credentials)
    unavailable: Body | None = None


def contract_of(provider) -> Contract | None:
    name = type(provider).__module__ + ".contract"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:   # the contract exists but imports something gone: say so
            raise
        return None
    return module.CONTRACT


def has_contract(provider) -> bool:
    """Whether the provider's package has a contract module, without importing it (or apispec):
    the document is built on its first request, so start-up does not pay for it."""
    try:
        return importlib.util.find_spec(type(provider).__module__ + ".contract") is not None
    except ModuleNotFoundError:   # the provider's module is not a package
        return False


def openapi_path(rule: str, mount: str) -> str:
    """``/checkout/payments/<payment_id>`` -> ``/payments/{payment_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule[len(mount):])


def routed(app: Flask, provider) -> list[tuple[str, str, str]]:
    """(endpoint, method, OpenAPI path) of every route of the provider's blueprint."""
    prefix = provider.blueprint.name + "."
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(prefix):
            continue
        for method in sorted(m.lower() for m in rule.methods if m.lower() in _METHODS):
            out.append((rule.endpoint[len(prefix):], method, openapi_path(rule.rule, provider.mount)))
    return out


def operation_id(routes: list[tuple[str, str, str]], endpoint: str, method: str, path: str) -> str:
    """The view's name; a view serving several methods adds the method, and one served at several
    paths adds, after the first path, the segments where the path differs (``session_create_v2``)."""
    same_view = [(m, p) for e, m, p in routes if e == endpoint]
    name = endpoint if len({m for m, _ in same_view}) == 1 else f"{endpoint}_{method}"
    first = next(p for m, p in same_view if m == method)
    if path == first:
        return name
    differs = [b for a, b in zip(first.split("/"), path.split("/")) if a != b]
    return "_".join([name, *(re.sub(r"\W+", "_", d) for d in differs)])


def document(app: Flask, provider, server_url: str) -> dict:
    """The provider's OpenAPI 3.1 document; raises if a routed endpoint has no contract entry."""
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin
    contract = contract_of(provider)
    plugin = MarshmallowPlugin()
    spec = APISpec(title=contract.title, version=contract.version, openapi_version=OPENAPI_VERSION,
                   plugins=[plugin], info={"description": contract.description},
                   servers=[{"url": server_url, "description": "this sandbox"}])
    for field_class, (type_, format_) in contract.field_types.items():
        plugin.map_to_openapi_type(field_class, type_, format_)
    for name, scheme in contract.security_schemes.items():
        spec.components.security_scheme(name, scheme)
    auth = [{name: [] for name in contract.security_schemes}]   # all of them, together

    def schema_of(schema):
        if isinstance(schema, tuple):   # one of several shapes
            return {"oneOf": [plugin.resolver.resolve_schema_dict(s) for s in schema]}
        # a bare field (a list of objects, say) has no component of its own: inline it
        return plugin.converter.field2property(schema) if isinstance(schema, Field) else schema

    def response(body: Body) -> dict:
        out: dict = {"description": body.description}
        if body.schema is not None or body.media != "application/json":
            out["content"] = {body.media: {"schema": schema_of(body.schema)} if body.schema is not None else {}}
        if body.headers:
            out["headers"] = {k: {"description": v, "schema": {"type": "string"}} for k, v in body.headers.items()}
        if body.links:
            out["links"] = body.links
        return out

    routes = routed(app, provider)
    paths: dict[str, dict] = {}
    for endpoint, method, path in routes:
        op = contract.operations.get(endpoint)
        if op is None:
            raise LookupError(f"{provider.name}: routed endpoint {endpoint} ({method.upper()} {path}) "
                              "has no contract entry")
        view = app.view_functions[f"{provider.blueprint.name}.{endpoint}"]
        is_public = getattr(view, "_sandbox_no_auth", False)
        responses = dict(op.responses) if is_public else {**contract.common, **op.responses}
        if method in _WRITES and contract.unavailable is not None:
            responses.setdefault(503, contract.unavailable)
        operation: dict = {"operationId": operation_id(routes, endpoint, method, path),
                           "summary": op.summary,
                           "responses": {str(s): response(b) for s, b in sorted(responses.items())}}
        if op.description:
            operation["description"] = op.description
        if op.tags:
            operation["tags"] = list(op.tags)
        if op.hosted:
            operation["tags"] = [*operation.get("tags", []), "hosted pages"]
        operation["security"] = [] if is_public else auth
        parameters = [{"in": "path", "name": n, "required": True, "schema": {"type": "string"}}
                      for n in re.findall(r"{([^}]+)}", path)]
        if op.query is not None:
            parameters.append({"in": "query", "schema": op.query})
        parameters += [{"in": "header", "name": n, "required": False, "description": d, "schema": {"type": "string"}}
                       for n, d in op.headers.items()]
        if parameters:
            operation["parameters"] = parameters
        if op.request is not None:
            media: dict = {"schema": op.request}
            if op.example is not None:
                media["example"] = op.example
            operation["requestBody"] = {"required": True, "content": {"application/json": media}}
        paths.setdefault(path, {})[method] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)

    webhooks = {}
    header_params = [{"in": "header", "name": n, "description": d, "required": False, "schema": {"type": "string"}}
                     for n, d in contract.webhook_headers.items()]
    for event, (description, schema) in contract.webhooks.items():
        holder = {"schema": schema}
        plugin.resolver.resolve_schema(holder)   # registers the schema as a component, as for paths
        webhooks[event] = {"post": {
            "operationId": "webhook_" + re.sub(r"[^A-Za-z0-9]+", "_", event), "summary": description,
            **({"parameters": header_params} if header_params else {}),
            "requestBody": {"required": True, "content": {provider.webhook_content_type: holder}},
            "responses": {"200": {"description": "any 2xx acknowledges the delivery; anything else is retried"}}}}
    doc = spec.to_dict()
    if webhooks:
        doc["webhooks"] = webhooks
    return doc


def register(app: Flask, sandbox) -> None:
    """Serve ``<mount>/openapi.json`` per provider with a contract, and the readable pages."""
    cache = Memo(64)   # (provider, server URL) -> document: it depends only on the provider and the host

    def doc_for(name: str) -> tuple[Any, dict]:
        provider = sandbox.providers.get(name)
        if provider is None or contract_of(provider) is None:
            abort(404)
        server_url = request.host_url.rstrip("/") + provider.mount
        if (name, server_url) not in cache:
            cache.keep((name, server_url), document(current_app, provider, server_url))
        return provider, cache[(name, server_url)]

    for provider in sandbox.providers.values():
        if not has_contract(provider):
            continue

        def serve(name=provider.name):
            p, doc = doc_for(name)
            return p.render_json(doc)
        app.add_url_rule(f"{provider.mount}/openapi.json", f"openapi_{provider.name}", no_auth(serve))

    def page(name):
        provider, doc = doc_for(name)
        return render_template_string(_PAGE.read_text(encoding="utf-8"), doc=doc,
                                      json_url=f"{provider.mount}/openapi.json", methods=_METHODS)
    app.add_url_rule("/_sandbox/openapi/<name>", "openapi_page", page)
