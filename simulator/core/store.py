"""Object store: thread-safe, O(1) writes, tenant-scoped reads.

Objects are plain dicts keyed by (provider, kind, id). Ids are globally unique, so a hosted page
(which carries no credentials) can find its object by id alone, while API reads pass the caller's
tenant and get ``None`` for anybody else's object — the provider then answers its own 404.

Callers mutate objects in place while holding ``store.lock`` and then call ``put`` again so a
persistent store can write the change through. The single re-entrant lock is what keeps two
concurrent captures from both seeing the same available balance.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import datetime
from itertools import islice
from typing import Any, Callable, Iterator

Key = tuple[str, str, str]


class MemoryStore:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._objects: dict[Key, dict] = {}
        self._tenant_of: dict[Key, str] = {}
        # per (provider, tenant, kind): insertion-ordered ids, for listing without a scan
        self._index: dict[tuple[str, str, str], OrderedDict[str, None]] = {}
        # called under the lock as fn(provider, kind, id, tenant, obj) after every put, with obj None
        # after a delete, and with every argument None once everything is dropped
        self.observers: list[Callable[[str, str, str, str, dict], None]] = []

    def put(self, provider: str, kind: str, id: str, obj: dict, tenant: str) -> dict:
        key = (provider, kind, id)
        with self.lock:
            previous = self._tenant_of.get(key)
            if previous is not None and previous != tenant:
                raise KeyError(f"{kind} {id} belongs to another tenant")
            self._objects[key] = obj
            self._tenant_of[key] = tenant
            self._index.setdefault((provider, tenant, kind), OrderedDict())[id] = None
            self._persist(key, tenant, obj)
            for observe in self.observers:
                observe(provider, kind, id, tenant, obj)
        return obj

    def get(self, provider: str, kind: str, id: str, tenant: str | None = None) -> dict | None:
        key = (provider, kind, id)
        with self.lock:
            obj = self._objects.get(key)
            if obj is None or (tenant is not None and self._tenant_of[key] != tenant):
                return None
            return obj

    def tenant_of(self, provider: str, kind: str, id: str) -> str | None:
        with self.lock:
            return self._tenant_of.get((provider, kind, id))

    def delete(self, provider: str, kind: str, id: str) -> None:
        key = (provider, kind, id)
        with self.lock:
            tenant = self._tenant_of.pop(key, None)
            self._objects.pop(key, None)
            if tenant is not None:
                self._index.get((provider, tenant, kind), {}).pop(id, None)
                self._unpersist(key)
                for observe in self.observers:
                    observe(provider, kind, id, tenant, None)

    def list(self, provider: str, kind: str, tenant: str) -> list[dict]:
        with self.lock:
            ids = self._index.get((provider, tenant, kind), {})
            return [self._objects[(provider, kind, i)] for i in ids]

    def newest(self, provider: str, kind: str, tenant: str, offset: int, limit: int) -> list[dict]:
        """One page of a listing, newest first, without copying the whole index."""
        with self.lock:
            ids = self._index.get((provider, tenant, kind), {})
            return [self._objects[(provider, kind, i)] for i in islice(reversed(ids), offset, offset + limit)]

    def groups(self) -> list[tuple[str, str, str, int]]:
        """(provider, tenant, kind, count) of every non-empty listing."""
        with self.lock:
            return [(*k, len(ids)) for k, ids in self._index.items() if ids]

    def find(self, provider: str, kind: str, tenant: str, pred: Callable[[dict], bool]) -> Iterator[dict]:
        return (o for o in self.list(provider, kind, tenant) if pred(o))

    def reset(self, tenant: str | None = None) -> None:
        with self.lock:
            if tenant is None:
                self._objects.clear()
                self._tenant_of.clear()
                self._index.clear()
                self._unpersist_all()
                for observe in self.observers:
                    observe(None, None, None, None, None)
                return
            for key in [k for k, t in self._tenant_of.items() if t == tenant]:
                self.delete(*key)

    def count(self) -> int:
        with self.lock:
            return len(self._objects)

    # persistence hooks: no-ops in memory
    def _persist(self, key: Key, tenant: str, obj: dict) -> None:
        pass

    def _unpersist(self, key: Key) -> None:
        pass

    def _unpersist_all(self) -> None:
        pass


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__dt__": value.isoformat()}
    raise TypeError(f"cannot persist {type(value).__name__}")


def _decode(obj: dict) -> Any:
    if len(obj) == 1 and "__dt__" in obj:
        return datetime.fromisoformat(obj["__dt__"])
    return obj


class SQLiteStore(MemoryStore):
    """Write-through persistence: reads stay in memory, each write is one row upsert."""

    def __init__(self, state) -> None:
        super().__init__()
        self._state = state
        rows = state.execute("SELECT provider, kind, id, tenant, data FROM objects ORDER BY rowid")
        self._loading = True
        for provider, kind, id, tenant, data in rows:
            super().put(provider, kind, id, json.loads(data, object_hook=_decode), tenant)
        self._loading = False

    def _persist(self, key: Key, tenant: str, obj: dict) -> None:
        if self._loading:
            return
        self._state.execute(
            "INSERT INTO objects (provider, kind, id, tenant, data) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (provider, kind, id) DO UPDATE SET data = excluded.data",
            (*key, tenant, json.dumps(obj, default=_encode)),
        )

    def _unpersist(self, key: Key) -> None:
        self._state.execute("DELETE FROM objects WHERE provider = ? AND kind = ? AND id = ?", key)

    def _unpersist_all(self) -> None:
        self._state.execute("DELETE FROM objects")
