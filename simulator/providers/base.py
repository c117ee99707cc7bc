"""The contract every provider fulfils.

A provider is a Flask blueprint plus an object that answers what the core asks of it: who the
caller is (``authenticate``), how its errors look (``error``), how it signs webhooks and on what
schedule it retries them, and how it renders what a scenario decided. Everything that differs
between providers is data or a hook here, never an ``if provider == ...`` in the core.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any, Callable, Collection, Iterable

from flask import Blueprint, Response, current_app, g, request
from flask.globals import _cv_app
from marshmallow import Schema, ValidationError

from ..core import effects, inputs
from ..core.idempotency import IN_FLIGHT, REPLAY
from ..core.runtime import Sandbox
from .shape import ErrorSpec, Machine, Refusal, ScopedStore, Transitions, schema, walk

_BODY = object()
_PLAIN_HOST = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]+)?")
# the one JSON encoder of every answer: built once, not per call
_encode = json.JSONEncoder(ensure_ascii=False).encode
_STATUS_KINDS = ("unauthorized", "forbidden", "not_found", "method_not_allowed", "validation", "internal",
                 "unavailable")


@dataclass
class Caller:
    tenant: str
    verified: bool = True   # False where a signature could not be checked (no key registered)


def no_auth(view: Callable) -> Callable:
    """Mark a view that needs no credentials (hosted pages, 3DS pages, key downloads)."""
    view._sandbox_no_auth = True
    return view


def idempotent_view(header: str, hooks: Callable[..., dict]) -> Callable:
    """Decorate a view so a request carrying ``header`` runs once per key (``Provider.idempotent``).

    ``hooks(provider, key, **view_args)`` returns the provider's keyword arguments for
    ``Provider.idempotent`` (ttl, scope, fingerprint, in_flight...) and raises ``Refusal`` for a
    key the provider rejects. A request without the header just runs.
    """
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            key = request.headers.get(header)
            if key is None:
                return view(*args, **kwargs)
            provider = g.sandbox_provider
            return provider.idempotent(key, lambda: view(*args, **kwargs), **hooks(provider, key, **kwargs))
        return wrapper
    return decorate


def current_provider(name: str) -> "Provider":
    """The provider called ``name`` of the app serving this request. A provider's routes ask for it
    several times a request: the pipeline keeps it in g (one context lookup where the proxies take
    three), and the routes bind the name once instead of importing their provider's class per call."""
    ctx = _cv_app.get(None)
    if ctx is not None:
        found = ctx.g.__dict__.get("sandbox_provider")
        if found is not None and found.name == name:
            return found
    return current_app.extensions["sandbox"].providers[name]

class Provider:
    """One payment provider. See ``shape`` for the files a provider package holds.

    Class attributes a provider sets: ``name`` (the registry name and the tenant namespace),
    ``title``, ``mount``, ``blueprint``, ``config_schema``/``secret_config_keys``,
    ``webhook_schedule``, ``error_table`` (kind -> ErrorSpec, core kinds included: not_found,
    method_not_allowed, unauthorized, malformed, too_large, unsupported_media_type, internal,
    unavailable) and ``machine_class`` (built once, as ``self.machine``). ``self.store`` is the
    provider-scoped store.
    """
    name: str = ""
    title: str = ""
    mount: str = ""
    blueprint: Blueprint
    config_schema: type[Schema] | None = None
    secret_config_keys: tuple[str, ...] = ()
    webhook_schedule: list[timedelta] = []
    webhook_content_type = "application/json"
    error_table: dict[str, ErrorSpec] = {}
    machine_class: type[Machine] | None = None
    decline_codes: Collection[str] = ()          # what ``decline: CODE`` in a scenario may name
    default_webhook_secret: str | None = None    # printed at start while no webhook_secret is configured

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.settings: dict = {}
        self.store = ScopedStore(sandbox, self.name)
        self.machine = self.machine_class(self) if self.machine_class is not None else None

    @classmethod
    def state_tables(cls) -> tuple[Transitions, ...]:
        """Every transition table of this provider, for the dashboard and generated docs."""
        return cls.machine_class.tables if cls.machine_class is not None else ()

    # -- wiring ------------------------------------------------------------------------------
    def configure(self, settings: dict) -> None:
        """Called with the provider's (validated) config section, at start and on PUT config."""
        self.settings = settings or {}

    def startup_lines(self, base_url: str) -> list[str]:
        lines = [f"{self.title:<13} {base_url}{self.mount}/"]
        if self.default_webhook_secret and not self.settings.get("webhook_secret"):
            lines.append(f"{'':<13} webhook secret (default): {self.default_webhook_secret}")
        return lines

    # -- auth and errors ---------------------------------------------------------------------
    def authenticate(self, req) -> Caller:
        raise NotImplementedError

    def error(self, kind: str, status: int | None = None, detail: Any = None, **fields: Any) -> Response:
        """The provider's error response for ``kind``: the one path every error takes.

        The row of ``error_table`` gives status, code and message; ``status`` overrides the status
        (the core passes the HTTP status it met; a scenario's http_error picks its own), ``detail``
        the message (a string) or structured data for ``envelope``. An unknown kind is ``internal``.
        """
        spec = self.error_table.get(kind) or self.error_table["internal"]
        status = spec.status if spec.own_status else status or spec.status
        body = self.envelope(spec, status, detail, fields)
        if body is None:
            return Response(b"", status=status)
        return self.render_json(body, status)

    def status_error(self, status: int) -> Response:
        """What the provider answers with ``status`` of its own accord: a scenario's http_error
        without a body. The generic kinds first (a 422 is a validation error, not a malformed
        body), then any kind of that status; a status the provider has none of is ``unavailable``."""
        table = self.error_table
        kind = next((k for k in _STATUS_KINDS if k in table and table[k].status == status), None) or \
            next((k for k, spec in table.items() if spec.status == status), "unavailable")
        return self.error(kind, status)

    def envelope(self, spec: ErrorSpec, status: int, detail: Any, fields: dict) -> dict | None:
        """The provider's error body for one row of its error table (None: the answer has no body)."""
        raise NotImplementedError

    def refused(self, exc: Refusal) -> Response:
        return self.error(exc.kind, exc.status, exc.detail, **exc.fields)

    def describe(self, exc: Refusal) -> str:
        """A refusal as one human sentence, for hosted pages."""
        spec = self.error_table.get(exc.kind)
        text = spec.text(exc.detail) if spec else exc.detail
        return text if isinstance(text, str) and text else exc.kind.replace("_", " ")

    def decorate(self, response: Response) -> Response:
        """Add headers the provider puts on every response (request ids, versions)."""
        return response

    # -- shared helpers for handlers ---------------------------------------------------------
    @property
    def tenant(self) -> str:
        return g.sandbox_caller.tenant

    def now(self, tenant: str | None = None):
        return self.sandbox.clock.now(tenant if tenant is not None else self.tenant)

    def json_body(self, *, allow_empty: bool = True) -> Any:
        """The request's JSON; malformed JSON, invalid Unicode or absurd nesting is the provider's
        ``malformed`` error, not a 500 after the object was created."""
        raw = request.get_data(cache=True)
        if not raw.strip():
            if allow_empty:
                return {}
            raise Refusal("malformed", "empty body", status=400)
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise Refusal("malformed", "malformed JSON", status=400) from None
        except RecursionError:  # absurdly deep nesting is malformed input, not a server fault
            raise Refusal("malformed", "nesting too deep", status=400) from None
        problem = inputs.json_problem(raw, data)
        if problem:
            raise Refusal("malformed", problem, status=400)
        return data

    def parse(self, schema_cls: type[Schema], data: Any = _BODY, *, allow_empty: bool = True) -> dict:
        """Validate a request (by default the JSON body) with ``schema_cls``.

        A body that is not a JSON object raises ``Refusal("malformed")``; field errors raise
        ``Refusal("validation", [(dotted.path, message), ...])`` — every failing field, in order.
        """
        if data is _BODY:
            data = self.json_body(allow_empty=allow_empty)
        if not isinstance(data, dict):
            raise Refusal("malformed", "request body must be a JSON object")
        try:
            return schema(schema_cls).load(data)
        except ValidationError as exc:
            raise Refusal("validation", list(walk(exc.messages))) from None

    @staticmethod
    def render_json(body: Any, status: int = 200, headers: dict | None = None) -> Response:
        return Response(_encode(body), status=status, headers=headers, mimetype="application/json")

    def idempotent(self, key: str, run: Callable[[], Response], *, ttl: timedelta, scope: str | None = None,
                   fingerprint: Any = None, in_flight: Callable[[], Response],
                   mismatch: Callable[[], Response] | None = None,
                   remember: Callable[[Response], bool] = lambda r: r.status_code < 300,
                   replay_headers: dict | None = None, repeat: Callable[[], Response] | None = None) -> Response:
        """Run ``run`` once per idempotency key and replay its answer to every repeat.

        The providers differ only in the hooks: what a duplicate still in flight gets, whether a
        repeat with another body (``fingerprint``) is refused, and which answers are remembered
        (a refused request usually is not, so a corrected retry with the same key goes through),
        and whether a repeat replays the first answer or gets ``repeat()`` instead.
        """
        ledger = self.sandbox.idempotency
        claim = (self.name, self.tenant, scope or request.path, key)
        state, stored = ledger.begin(claim, self.now(), ttl, fingerprint)
        if state == REPLAY:
            if repeat is not None:
                return repeat()
            if mismatch is not None and ledger.fingerprint(claim) != fingerprint:
                return mismatch()
            status, body = stored
            return Response(body, status=status, mimetype="application/json", headers=replay_headers)
        if state == IN_FLIGHT:
            if mismatch is not None and stored != fingerprint:
                return mismatch()
            return in_flight()
        try:
            response = run()
        except Refusal as exc:
            response = self.refused(exc)
        except BaseException:
            ledger.abort(claim)
            raise
        if remember(response):
            ledger.finish(claim, (response.status_code, response.get_data()))
        else:
            ledger.abort(claim)
        return response

    def base_url(self) -> str:
        """Where this provider is mounted, seen from the caller (host and port of the request)."""
        environ = request.environ
        host = environ.get("HTTP_HOST", "")
        if not _PLAIN_HOST.fullmatch(host) or host.endswith((":80", ":443")):
            return request.host_url.rstrip("/") + self.mount   # werkzeug quotes and drops default ports
        return environ["wsgi.url_scheme"] + "://" + host + self.mount

    def emit(self, tenant: str, event_type: str, payload: Any, url: str | None, *,
             subject: str | None = None, event_id: str | None = None, settle_on_success: bool = True,
             headers: dict | None = None, schedule: list[timedelta] | None = None) -> list[dict]:
        body = payload if isinstance(payload, bytes) else _encode(payload)
        return self.sandbox.outbox.enqueue(
            provider=self.name, tenant=tenant, event_type=event_type, url=url, body=body,
            schedule=self.webhook_schedule if schedule is None else schedule,
            content_type=self.webhook_content_type, headers=headers, settle_on_success=settle_on_success,
            subject=subject, event_id=event_id)

    def webhook_signer(self, tenant: str):
        """Return ``signer(body, delivery, now) -> headers`` or None."""
        return None

    # -- scenario hooks ----------------------------------------------------------------------
    def decline_code_valid(self, code: str) -> bool:
        """Whether ``decline: CODE`` in a scenario names one of this provider's decline codes."""
        return not self.decline_codes or str(code) in self.decline_codes

    @staticmethod
    def effects() -> effects.Effects:
        return effects.current()

    # -- hosted pages, keys, lifecycle -------------------------------------------------------
    def hosted_action(self, object_id: str, action: dict) -> Response:
        """What the customer does on a hosted page, for CI. Same code path as the HTML form.

        A provider usually sets ``hosted_action = routes.hosted_action`` (a function of the
        provider, the object id and the action)."""
        return self.error("not_found", 404)

    def public_key_pem(self) -> str | None:
        return None

    def on_reset(self, tenant: str | None = None) -> None:
        pass

    # -- the dashboard -----------------------------------------------------------------------
    def aliases_of(self, kind: str, id: str, obj: dict, tenant: str) -> Iterable[str]:
        """Ids a stored object is reached by on the wire that it does not carry itself (a payment
        page's token kept on a record of its own): its timeline finds the requests naming them."""
        return ()
