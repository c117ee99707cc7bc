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
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from .state import NullState

NEW, REPLAY, IN_FLIGHT = "new", "replay", "in_flight"


@dataclass
class _Entry:
    """A key whose request is being processed: duplicates may wait on ``done``."""
    at: datetime
    done: threading.Event = field(default_factory=threading.Event)
    response: Any = None
    fingerprint: Any = None


class _Done(NamedTuple):
    """A finished key. Clients may send a key with every payment and the clock may never pass a
    key's TTL, so every key is kept: as a tuple rather than an _Entry and its Event, with the
    answer's body compressed against a first answer of the same provider (~3 KB a key otherwise,
    more than the payment it made)."""
    at: datetime
    fingerprint: Any
    response: Any          # (status, body) with the body packed when ``primer`` says so; or a value
    primer: str | None     # whose answer the body is compressed against; None: not compressed


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
        self._entries: dict[tuple, _Entry | _Done] = {}
        self._primers: dict[str, bytes] = {}   # provider -> the first answer body it finished
        for key, _, saved in self._state.rows(_SPACE):
            scope = tuple(json.loads(key))
            packed, primer = self._pack(scope, _decode(saved["response"]))
            self._entries[scope] = _Done(datetime.fromisoformat(saved["at"]), saved["fingerprint"], packed, primer)

    def begin(self, scope: tuple, now: datetime, ttl: timedelta, fingerprint: Any = None,
              wait: float | None = None) -> tuple[str, Any]:
        """Claim ``scope``; with ``wait`` a duplicate blocks until the first finishes."""
        with self._lock:
            entry = self._entries.get(scope)
            if entry.__class__ is _Done and now - entry.at > ttl:
                entry = None
            if entry is None:
                self._entries[scope] = _Entry(at=now, fingerprint=fingerprint)
                return NEW, None
        if entry.__class__ is _Done:
            return REPLAY, self._unpack(entry)
        if not entry.done.is_set() and wait:
            entry.done.wait(wait)
        if entry.done.is_set() and entry.response is not None:
            return REPLAY, entry.response
        return IN_FLIGHT, entry.fingerprint

    def fingerprint(self, scope: tuple) -> Any:
        with self._lock:
            entry = self._entries.get(scope)
            return entry.fingerprint if entry else None

    def _pack(self, scope: tuple, response: Any) -> tuple[Any, str | None]:
        if not (isinstance(response, tuple) and len(response) == 2 and isinstance(response[1], bytes)):
            return response, None
        status, body = response
        provider = str(scope[0])
        primer = self._primers.get(provider)
        if primer is None:
            with self._lock:
                primer = self._primers.setdefault(provider, body)
        packer = zlib.compressobj(1, zdict=primer)
        return (status, packer.compress(body) + packer.flush()), provider

    def _unpack(self, done: _Done) -> Any:
        if done.primer is None:
            return done.response
        status, packed = done.response
        return status, zlib.decompressobj(zdict=self._primers[done.primer]).decompress(packed)

    def finish(self, scope: tuple, response: Any) -> None:
        packed, primer = self._pack(scope, response)   # outside the lock every key's request takes
        with self._lock:
            entry = self._entries.get(scope)
            if entry is None or entry.__class__ is _Done:
                return
            entry.response = response
            self._entries[scope] = _Done(entry.at, entry.fingerprint, packed, primer)
            # saved before the answer leaves, so a client never sees an answer a restart forgets
            self._state.put(_SPACE, json.dumps(scope), {"at": entry.at.isoformat(), "fingerprint": entry.fingerprint,
                                                        "response": _encode(response)},
                            scope[1] if len(scope) > 1 else None)
        entry.done.set()   # duplicates that waited for it take ``entry.response``

    def abort(self, scope: tuple) -> None:
        with self._lock:
            entry = self._entries.pop(scope, None)
            if entry.__class__ is _Done:
                self._state.delete(_SPACE, json.dumps(scope))
        if entry.__class__ is _Entry:
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
