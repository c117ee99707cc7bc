"""Idempotency keys: one key, one result.

``begin`` claims a key atomically, so of twenty concurrent requests with one key exactly one is
processed; the others see it in flight (providers answer that as they do, e.g. 409 or 429) or,
once it finished, get the stored response replayed. A request that failed validation is not
stored, so a corrected retry with the same key is processed normally.

With a state file every finished key is saved with its answer, so a replay after a restart gets
the original response instead of a second object. Keys still in flight are not: the process that
held them died before answering, so their request never happened as far as the client knows.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .state import NullState

NEW, REPLAY, IN_FLIGHT = "new", "replay", "in_flight"


@dataclass
class _Entry:
    at: datetime
    done: threading.Event = field(default_factory=threading.Event)
    response: Any = None
    fingerprint: Any = None


_SPACE = "idempotency"


def _encode(response: Any) -> Any:
    if isinstance(response, tuple):  # (status, body bytes); latin-1 round-trips any byte
        return {"status": response[0], "body": response[1].decode("latin-1")}
    return {"value": response}


def _decode(saved: dict) -> Any:
    if "status" in saved:
        return saved["status"], saved["body"].encode("latin-1")
    return saved["value"]


class IdempotencyKeys:
    def __init__(self, state: NullState | None = None) -> None:
        self._lock = threading.Lock()
        self._state = state or NullState()
        self._entries: dict[tuple, _Entry] = {}
        for key, _, saved in self._state.rows(_SPACE):
            entry = _Entry(at=datetime.fromisoformat(saved["at"]), response=_decode(saved["response"]),
                           fingerprint=saved["fingerprint"])
            entry.done.set()
            self._entries[tuple(json.loads(key))] = entry

    def begin(self, scope: tuple, now: datetime, ttl: timedelta, fingerprint: Any = None,
              wait: float | None = None) -> tuple[str, Any]:
        """Claim ``scope``; with ``wait`` a duplicate blocks until the first finishes."""
        with self._lock:
            entry = self._entries.get(scope)
            if entry is not None and entry.done.is_set() and now - entry.at > ttl:
                entry = None
            if entry is None:
                self._entries[scope] = _Entry(at=now, fingerprint=fingerprint)
                return NEW, None
        if not entry.done.is_set() and wait:
            entry.done.wait(wait)
        if entry.done.is_set() and entry.response is not None:
            return REPLAY, entry.response
        return IN_FLIGHT, entry.fingerprint

    def fingerprint(self, scope: tuple) -> Any:
        with self._lock:
            entry = self._entries.get(scope)
            return entry.fingerprint if entry else None

    def finish(self, scope: tuple, response: Any) -> None:
        with self._lock:
            entry = self._entries.get(scope)
            if entry is None:
                return
            entry.response = response
            # saved before the answer leaves, so a client never sees an answer a restart forgets
            self._state.put(_SPACE, json.dumps(scope), {"at": entry.at.isoformat(), "fingerprint": entry.fingerprint,
                                                        "response": _encode(response)},
                            scope[1] if len(scope) > 1 else None)
        entry.done.set()

    def abort(self, scope: tuple) -> None:
        with self._lock:
            entry = self._entries.pop(scope, None)
            if entry is not None and entry.done.is_set():
                self._state.delete(_SPACE, json.dumps(scope))
        if entry is not None:
            entry.done.set()

    def reset(self, tenant: str | None = None) -> None:
        """Scopes are tuples whose second item is the tenant."""
        with self._lock:
            if tenant is None:
                self._entries.clear()
            else:
                for k in [k for k in self._entries if len(k) > 1 and k[1] == tenant]:
                    del self._entries[k]
            self._state.clear(_SPACE, tenant)
