"""What the scenario engine decided for the current request.

The engine matches rules before a handler runs and leaves an ``Effects`` object here; provider
machines read ``decline``, ``require_3ds`` and ``token`` and answer in their own shape, and the
webhook outbox reads ``webhook`` for every delivery the request causes. Nothing here knows a
provider or the rule format.
"""
from __future__ import annotations

import contextvars
from dataclasses import dataclass, field


@dataclass
class Effects:
    decline: str | None = None
    require_3ds: bool = False
    token: str | None = None            # "inactive" | "expired"
    webhook: dict = field(default_factory=dict)  # fail, status, drop, duplicate, delay, bad_signature
    rules: list[str] = field(default_factory=list)

    def take_decline(self) -> str | None:
        """A decline applies to the first authorization of the request only."""
        code, self.decline = self.decline, None
        return code


_current: contextvars.ContextVar[Effects | None] = contextvars.ContextVar("sandbox_effects", default=None)


def current() -> Effects:
    effects = _current.get()
    return effects if effects is not None else Effects()


def install(effects: Effects | None) -> contextvars.Token:
    return _current.set(effects)


def uninstall(token: contextvars.Token) -> None:
    _current.reset(token)
