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
import sys
import threading
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from .state import NullState

NEW, REPLAY, IN_FLIGHT = "new", "replay", "in_flight"
# the longest TTL a provider may be configured with: 100 years (a key then never expires in practice)
TTL_MAX_HOURS = 100 * 8766


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
    status: int
    packed: bytes     # the answer's body, raw deflate primed with the provider's first answer


_SPACE = "idempotency"


def _canonical(scope: tuple) -> tuple:
    """``scope`` with its provider, tenant and path interned: each request spells them afresh, and
    a kept key would keep its own copies (~150 B of the ~600 B a key costs)."""
    return (*map(sys.intern, scope[:-1]), scope[-1])


class IdempotencyKeys:
    def __init__(self, state: NullState | None = None) -> None:
        self._lock = threading.Lock()
        self._state = state or NullState()
        self._entries: dict[tuple, _Entry | _Done] = {}
        self._primers: dict[str, bytes] = {}   # provider -> the first answer body it finished
        self._at: datetime | None = None       # the last key's time: a frozen clock gives them all one
        for key, _, saved in self._state.rows(_SPACE):
            scope = _canonical(tuple(json.loads(key)))
            response = saved["response"]
            self._entries[scope] = self._done(scope, datetime.fromisoformat(saved["at"]), saved["fingerprint"],
                                              response["status"], response["body"].encode("latin-1"))

    def begin(self, scope: tuple, now: datetime, ttl: timedelta, fingerprint: Any = None,
              wait: float | None = None) -> tuple[str, Any]:
        """Claim ``scope``; with ``wait`` a duplicate blocks until the first finishes."""
        with self._lock:
            entry = self._entries.get(scope)
            if entry.__class__ is _Done and now - entry.at > ttl:
                entry = None
            if entry is None:
                if now != self._at:
                    self._at = now
                self._entries[_canonical(scope)] = _Entry(at=self._at, fingerprint=fingerprint)
                return NEW, None
        if entry.__class__ is _Done:
            return REPLAY, self._unpack(scope, entry)
        if not entry.done.is_set() and wait:
            entry.done.wait(wait)
        if entry.done.is_set() and entry.response is not None:
            return REPLAY, entry.response
        return IN_FLIGHT, entry.fingerprint

    def fingerprint(self, scope: tuple) -> Any:
        with self._lock:
            entry = self._entries.get(scope)
            return entry.fingerprint if entry else None

    def _done(self, scope: tuple, at: datetime, fingerprint: Any, status: int, body: bytes) -> _Done:
        provider = scope[0]
        primer = self._primers.get(provider)
        if primer is None:
            with self._lock:
                primer = self._primers.setdefault(provider, body)
        # level 6 and no zlib header: ~145 B for a payment's 1.5 KB answer against ~173 B at
        # level 1 with one, for ~5 us more on the request that finishes the key
        packer = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=primer)
        return _Done(at, fingerprint, status, packer.compress(body) + packer.flush())

    def _unpack(self, scope: tuple, done: _Done) -> tuple[int, bytes]:
        return done.status, zlib.decompressobj(-15, zdict=self._primers[scope[0]]).decompress(done.packed)

    def finish(self, scope: tuple, response: tuple[int, bytes]) -> None:
        """``response``: the answer's status and body, replayed byte for byte."""
        status, body = response
        with self._lock:
            entry = self._entries.get(scope)
            if entry is None or entry.__class__ is _Done:
                return
        # compressed outside the lock every key's request takes
        done = self._done(scope, entry.at, entry.fingerprint, status, body)
        entry.response = response   # what duplicates that wait for ``done`` take
        with self._lock:
            if self._entries.get(scope) is entry:   # else reset while it was compressed
                self._entries[scope] = done
                # saved before the answer leaves, so a client never sees an answer a restart
                # forgets (latin-1 round-trips any byte)
                self._state.put(_SPACE, json.dumps(scope), {
                    "at": entry.at.isoformat(), "fingerprint": entry.fingerprint,
                    "response": {"status": status, "body": body.decode("latin-1")}}, scope[1] if len(scope) > 1 else None)
        entry.done.set()

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
