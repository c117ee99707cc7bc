"""The request pipeline around every provider handler.

before: find the provider by mount -> authenticate (unless the view needs no credentials) ->
scenario match (latency, dropped connection, injected HTTP error; the rest travels as Effects) ->
handler -> errors rendered in the provider's envelope -> journal.

A request below a provider's mount takes ``ProviderLane``: the same steps, and the app's own
before/after/teardown functions, without the parts of Flask's request cycle no provider uses
(sessions, request signals, an application context object, URL binding per request). Everything
else, and any provider request an extension would see differently (blueprint hooks, signal
receivers, OPTIONS), goes through Flask's own ``wsgi_app`` with the same pipeline as hooks.
"""
from __future__ import annotations

import io
import logging
import sys
import traceback

from flask import Flask, g, request
from flask import signals
from flask.ctx import _AppCtxGlobals
from flask.globals import _cv_app, _cv_request
from flask.sessions import NullSession
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RoutingException

from .core import effects
from .core.memo import Memo
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

    def begin(req, ctx, provider):
        """Authentication, the outbox's back-pressure and the scenario's HTTP-layer effects; a
        response here answers the request without the view."""
        sandbox.state.begin()
        if not _read_body(req) and req.mimetype == "application/x-www-form-urlencoded":
            req.get_data(cache=True)  # else form parsing consumes it and the journal (masked) misses it
        caller = None
        if req.routing_exception is not None:
            # unknown path or method below a mount: the provider's 404/405 follows, but scenario
            # HTTP-layer effects (latency, dropped connection, http_error) still apply to it
            try:
                caller = ctx.sandbox_caller = provider.authenticate(req)
            except Exception:  # no usable credential: match as no tenant, answer the 404 anyway
                pass
        elif not getattr(app.view_functions.get(req.url_rule.endpoint), "_sandbox_no_auth", False):
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
        if decision.latency_ms and sandbox.closing.wait(decision.latency_ms / 1000.0):
            # the server is stopping: the request is not processed, so the client that never hears
            # back has changed nothing
            return provider.error("unavailable", 503)
        if decision.drop_connection == "before":
            req.environ[DROP_KEY] = True
            return provider.render_json({}, 500)
        if decision.drop_connection == "after":
            req.environ[DROP_KEY] = True
        if decision.http_error is not None:
            status = int(decision.http_error.get("status", 503))
            body = decision.http_error.get("body")
            if body is None:
                return provider.status_error(status)
            return provider.render_json(body, status)
        return None

    def finish(req, ctx, provider, response):
        """Provider headers, the journal entry, and the state file's commit, before the answer leaves."""
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

    def end(ctx):
        sandbox.state.commit()   # a request that failed past its answer still keeps what memory holds
        token = ctx.pop("sandbox_effects_token", None)
        if token is not None:
            effects.uninstall(token)

    @app.before_request
    def _pipeline():
        # the request and g proxies cost a lookup on every touch: this path touches them once
        req, ctx = request._get_current_object(), g._get_current_object()
        ctx.sandbox_rules = ()
        provider = ctx.sandbox_provider = provider_for_path(req.path)
        return None if provider is None else begin(req, ctx, provider)

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
        return finish(request._get_current_object(), ctx, provider, response)

    @app.teardown_request
    def _uninstall(_exc):
        end(g._get_current_object())

    def answer_error(exc: Exception):
        """What Flask's error handling would answer for ``exc`` on a provider's path."""
        if isinstance(exc, Refusal):
            return _refusal(exc)
        if isinstance(exc, HTTPException):
            # a redirect to the slash-terminated URL is werkzeug's answer, as under Flask
            return exc if isinstance(exc, RoutingException) or exc.code is None else _http_error(exc)
        return _unexpected(exc)

    app.provider_lane = ProviderLane(app, provider_for_path, begin, finish, end, answer_error,
                                     own=(_pipeline, _journal, _uninstall))


class _LaneContext(_AppCtxGlobals):
    """What ``flask.request``, ``flask.g``, ``flask.current_app``, ``url_for`` and templates read from
    Flask's request and application contexts, in one object that is both (and ``g`` as well)."""

    def __init__(self, app: Flask, req, url_adapter) -> None:
        self.__dict__.update(app=app, request=req, url_adapter=url_adapter, flashes=None,
                             session=_NULL_SESSION, _after_request_functions=[], sandbox_rules=())

    @property
    def g(self):
        return self


_NULL_SESSION = NullSession()   # read-only, so one serves every request
# the signals Flask's request cycle sends (templates send theirs on either path)
_SIGNALS = (signals.request_started, signals.request_finished, signals.got_request_exception,
            signals.request_tearing_down, signals.appcontext_pushed, signals.appcontext_popped,
            signals.appcontext_tearing_down)


def _read_body(req) -> bool:
    """Read a body of a declared length at once, as werkzeug's ``get_data`` would and keeps it
    (``_cached_data``), without the stream werkzeug builds to read it: ~6 us of every write, and
    ~4 us of every read, which has no body (neither a length nor chunked). A body over the size
    limit, chunked, or shorter than declared is left to werkzeug's answer."""
    environ = req.environ
    if "HTTP_TRANSFER_ENCODING" in environ:
        return False
    length = environ.get("CONTENT_LENGTH", "")
    if length in ("", "0"):
        req._cached_data = b""
        return True
    if not (length.isascii() and length.isdigit()):
        return False
    size, limit = int(length), req.max_content_length
    if limit is not None and size > limit:
        return False
    data = environ["wsgi.input"].read(size)
    if len(data) < size:   # the client went away: werkzeug reads the same and refuses it
        environ["wsgi.input"] = io.BytesIO(data)
        return False
    req._cached_data = data
    return True


_NO_BODY = frozenset((204, 304))


def _send(response, environ, start_response):
    """``response(environ, start_response)`` for the common answer (a body in memory, no redirect,
    nothing to run on close), without copying its headers: werkzeug's general path handles the rest."""
    status = response.status_code
    if (response.direct_passthrough or response._on_close or status in _NO_BODY or status < 200
            or environ.get("REQUEST_METHOD") == "HEAD" or not isinstance(response.response, list)
            or not all(type(chunk) is bytes for chunk in response.response)):
        return response(environ, start_response)
    headers = response.headers.to_wsgi_list()
    names = {name.lower() for name, _ in headers}
    if "location" in names or "content-location" in names or "content-length" not in names:
        return response(environ, start_response)
    start_response(response.status, headers)
    return response.response


class ProviderLane:
    """Flask's request cycle for a provider's request, with what no provider uses left out."""

    def __init__(self, app: Flask, provider_for_path, begin, finish, end, answer_error, own) -> None:
        self.app, self.provider_for_path = app, provider_for_path
        self.begin, self.finish, self.end, self.answer_error = begin, finish, end, answer_error
        self.own = own
        self._adapters = Memo(64)
        # (method, path) -> (rule, arguments): a rule depends on neither host nor query here
        # (host and subdomain matching take Flask's path), and clients repeat their paths
        self._routes = Memo(4096)
        self._flask = Flask.wsgi_app.__get__(app)

    def _plain(self, provider) -> bool:
        """Whether nothing is registered that Flask's own cycle would run for this provider's
        requests and this one does not (it runs the app's own hooks, not a blueprint's)."""
        app, name = self.app, provider.blueprint.name
        for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs,
                      app.url_value_preprocessors):
            if name in hooks:
                return False
        return None not in app.url_value_preprocessors and not any(s.receivers for s in _SIGNALS)

    def _adapter(self, environ):
        """The URL map bound to the request's host: one binding per host, not one per request."""
        key = (environ.get("HTTP_HOST"), environ.get("SERVER_NAME"), environ.get("SERVER_PORT"),
               environ.get("SCRIPT_NAME"), environ.get("wsgi.url_scheme"))
        adapter = self._adapters.get(key)
        if adapter is None:
            adapter = self._adapters.keep(key, self.app.url_map.bind_to_environ(
                {**environ, "PATH_INFO": "/", "QUERY_STRING": ""}, server_name=self.app.config["SERVER_NAME"],
                subdomain=self.app.url_map.default_subdomain or ""))
        return adapter

    def __call__(self, environ, start_response):
        provider = self.provider_for_path(environ.get("PATH_INFO") or "/")
        if (provider is None or environ.get("REQUEST_METHOD") == "OPTIONS" or not self._plain(provider)
                or self.app.config["TRUSTED_HOSTS"] is not None or self.app.url_map.host_matching
                or self.app.subdomain_matching):
            return self._flask(environ, start_response)
        app = self.app
        req = app.request_class(environ)
        req.json_module = app.json
        try:
            adapter = self._adapter(environ)
        except HTTPException:   # a Host header werkzeug cannot bind: Flask answers it
            return self._flask(environ, start_response)
        ctx = _LaneContext(app, req, adapter)
        ctx.sandbox_provider = provider
        app_token, request_token = _cv_app.set(ctx), _cv_request.set(ctx)
        try:
            route = (req.method, req.path)
            matched = self._routes.get(route)
            if matched is None:
                try:
                    matched = adapter.match(req.path, req.method, return_rule=True,
                                           query_args=environ.get("QUERY_STRING", ""))
                except HTTPException as exc:
                    req.routing_exception = exc
                else:
                    self._routes.keep(route, matched)
            if matched is not None:
                req.url_rule, req.view_args = matched[0], dict(matched[1])
            try:
                response = app.make_response(self._dispatch(req, ctx, provider))
            except Exception as exc:   # handled, as Flask's error handlers do: teardown sees no error
                response = app.make_response(self.answer_error(exc))
            try:
                for func in ctx._after_request_functions:
                    response = func(response)
                for func in reversed(app.after_request_funcs.get(None, ())):
                    response = (self.finish(req, ctx, provider, response) if func is self.own[1]
                                else func(response))
            except Exception as exc:   # a broken hook: the provider's 500, as Flask would answer
                response = app.make_response(self.answer_error(exc))
            return _send(response, environ, start_response)
        finally:
            error = sys.exc_info()[1]
            try:
                for func in reversed(app.teardown_request_funcs.get(None, ())):
                    if func is self.own[2]:
                        self.end(ctx)
                    else:
                        func(error)
            finally:
                req.close()
                environ["werkzeug.request"] = None
                _cv_request.reset(request_token)
                _cv_app.reset(app_token)

    def _dispatch(self, req, ctx, provider):
        for func in self.app.before_request_funcs.get(None, ()):
            rv = self.begin(req, ctx, provider) if func is self.own[0] else func()
            if rv is not None:
                return rv
        if req.routing_exception is not None:
            raise req.routing_exception
        return self.app.view_functions[req.url_rule.endpoint](**req.view_args)
