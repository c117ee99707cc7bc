"""The contract every provider fulfils.

A provider is a Flask blueprint plus an object that answers what the core asks of it: who the
caller is (``authenticate``), how its errors look (``error``), how it signs webhooks and on what
schedule it retries them, and how it renders what a scenario decided. Everything that differs
between providers is data or a hook here, never an ``if provider == ...`` in the core.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from flask import Blueprint, Response, current_app, g, request
from marshmallow import Schema

from ..core import effects, inputs
from ..core.idempotency import IN_FLIGHT, REPLAY
from ..core.runtime import Sandbox


class ProviderError(Exception):
    """Raised anywhere below a handler; carries the provider-shaped response to send."""

    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


@dataclass
class Caller:
    tenant: str
    verified: bool = True   # False where a signature could not be checked (no key registered)


def public(view: Callable) -> Callable:
    """Mark a view that needs no credentials (hosted pages, 3DS pages, key downloads)."""
    view._sandbox_public = True
    return view


class Provider:
    name: str = ""
    title: str = ""
    mount: str = ""
    blueprint: Blueprint
    config_schema: type[Schema] | None = None
    secret_config_keys: tuple[str, ...] = ()
    webhook_schedule: list[timedelta] = []
    webhook_content_type = "application/json"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.settings: dict = {}

    # -- wiring ------------------------------------------------------------------------------
    @classmethod
    def current(cls):
        return current_app.extensions["sandbox"].providers[cls.name]

    def configure(self, settings: dict) -> None:
        """Called with the provider's (validated) config section, at start and on PUT config."""
        self.settings = settings or {}

    def startup_lines(self, base_url: str) -> list[str]:
        return [f"{self.title:<13} {base_url}{self.mount}/"]

    # -- auth and errors ---------------------------------------------------------------------
    def authenticate(self, req) -> Caller:
        raise NotImplementedError

    def error(self, kind: str, status: int, detail: Any = None) -> Response:
        """Render a core-level error in the provider's envelope.

        kinds: not_found, method_not_allowed, unauthorized, malformed, too_large,
        unsupported_media_type, internal, unavailable (scenario http_error without body).
        """
        raise NotImplementedError

    def fail(self, kind: str, status: int, detail: Any = None):
        raise ProviderError(self.error(kind, status, detail))

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
            self.fail("malformed", 400, "empty body")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self.fail("malformed", 400, "malformed JSON")
        except RecursionError:  # absurdly deep nesting is malformed input, not a server fault
            self.fail("malformed", 400, "nesting too deep")
        problem = inputs.json_problem(raw, data)
        if problem:
            self.fail("malformed", 400, problem)
        return data

    @staticmethod
    def render_json(body: Any, status: int = 200, headers: dict | None = None) -> Response:
        text = json.dumps(body, ensure_ascii=False)
        return Response(text, status=status, headers=headers, mimetype="application/json")

    def idempotent(self, key: str, run: Callable[[], Response], *, ttl: timedelta, scope: str | None = None,
                   fingerprint: Any = None, in_flight: Callable[[], Response],
                   mismatch: Callable[[], Response] | None = None,
                   remember: Callable[[Response], bool] = lambda r: r.status_code < 300,
                   replay_headers: dict | None = None) -> Response:
        """Run ``run`` once per idempotency key and replay its answer to every repeat.

        The providers differ only in the hooks: what a duplicate still in flight gets, whether a
        repeat with another body (``fingerprint``) is refused, and which answers are remembered
        (a refused request usually is not, so a corrected retry with the same key goes through).
        """
        ledger = self.sandbox.idempotency
        claim = (self.name, self.tenant, scope or request.path, key)
        state, stored = ledger.begin(claim, self.now(), ttl, fingerprint)
        if state == REPLAY:
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
        except ProviderError as exc:
            response = exc.response
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
        return request.host_url.rstrip("/") + self.mount

    def emit(self, tenant: str, event_type: str, payload: Any, url: str | None, *,
             subject: str | None = None, event_id: str | None = None, settle_on_success: bool = True,
             headers: dict | None = None, schedule: list[timedelta] | None = None) -> list[dict]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        return self.sandbox.outbox.enqueue(
            provider=self.name, tenant=tenant, event_type=event_type, url=url, body=body,
            signer=self.webhook_signer(tenant), schedule=self.webhook_schedule if schedule is None else schedule,
            content_type=self.webhook_content_type, headers=headers, settle_on_success=settle_on_success,
            subject=subject, event_id=event_id)

    def webhook_signer(self, tenant: str):
        """Return ``signer(body, delivery, now) -> headers`` or None."""
        return None

    # -- scenario hooks ----------------------------------------------------------------------
    def decline_code_valid(self, code: str) -> bool:
        """Whether ``decline: CODE`` in a scenario names one of this provider's decline codes."""
        return True

    @staticmethod
    def effects() -> effects.Effects:
        return effects.current()

    # -- hosted pages, keys, lifecycle -------------------------------------------------------
    def hosted_action(self, object_id: str, action: dict) -> Response:
        """What the customer does on a hosted page, for CI. Same code path as the HTML form."""
        return self.error("not_found", 404)

    def public_key_pem(self) -> str | None:
        return None

    def on_reset(self, tenant: str | None = None) -> None:
        pass
