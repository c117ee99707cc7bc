"""Tenants are created on first use from the credential's public identifier."""
from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Callable

from .state import NullState

_SPACE = "tenants"


class Tenants:
    def __init__(self, state: NullState | None = None) -> None:
        self._lock = threading.Lock()
        self._state = state or NullState()
        self._seen: dict[tuple[str, str], datetime] = {
            tuple(json.loads(key)): datetime.fromisoformat(first) for key, _, first in self._state.rows(_SPACE)}

    def ensure(self, provider: str, tenant: str, clock: Callable[[str], datetime]) -> None:
        """Record a tenant's first request; ``clock(tenant)`` is read only for a new one."""
        if (provider, tenant) in self._seen:  # the common case needs no lock
            return
        with self._lock:
            if (provider, tenant) not in self._seen:
                now = self._seen[(provider, tenant)] = clock(tenant)
                self._state.put(_SPACE, json.dumps([provider, tenant]), now.isoformat(), tenant)

    def list(self) -> list[dict]:
        with self._lock:
            return [{"provider": p, "tenant": t, "first_seen": s.isoformat()} for (p, t), s in self._seen.items()]

    def reset(self, tenant: str | None = None) -> None:
        with self._lock:
            if tenant is None:
                self._seen.clear()
            else:
                for key in [k for k in self._seen if k[1] == tenant]:
                    del self._seen[key]
            self._state.clear(_SPACE, tenant)
