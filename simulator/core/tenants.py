"""Tenants are created on first use from the credential's public identifier."""
from __future__ import annotations

import threading
from datetime import datetime


class Tenants:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], datetime] = {}

    def ensure(self, provider: str, tenant: str, now: datetime) -> None:
        with self._lock:
            self._seen.setdefault((provider, tenant), now)

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
