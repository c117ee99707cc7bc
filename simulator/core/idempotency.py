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
import marshal
import struct
import sys
import threading
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .clock import EPOCH, MICROSECOND
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


_SPACE = "idempotency"
# a finished key is one bytes object: its answer's status, its time (microseconds since the epoch),
# the length of its marshalled fingerprint, the fingerprint, and the answer's body compressed
_HEAD = struct.Struct(">HQH")


class IdempotencyKeys:
    """Keys by scope: (provider, tenant, path or the provider's own scope, key).

    Clients may send a key with every payment and the clock may never pass a key's TTL, so every
    finished key is kept, and kept small: a key string in the map of its scope's first three parts
    (one tuple for all the keys of a scope, its strings interned), and one bytes object holding the
    answer's status, the key's time, its fingerprint and the answer's body compressed against a
    first answer of the same provider. As a tuple of the four beside a tuple of the scope a key cost
    ~150 B more; with an uncompressed body, ~3 KB, more than the payment it made."""

    def __init__(self, state: NullState | None = None) -> None:
        self._lock = threading.Lock()
        self._state = state or NullState()
        # (provider, tenant, path) -> key -> _Entry while in flight, bytes once finished
        self._groups: dict[tuple, dict[str, _Entry | bytes]] = {}
        self._primers: dict[str, bytes] = {}   # provider -> the first answer body it finished
        for key, _, saved in self._state.rows(_SPACE):
            scope = tuple(json.loads(key))
            response = saved["response"]
            self._group(scope)[scope[-1]] = self._done(scope, datetime.fromisoformat(saved["at"]),
                                                       saved["fingerprint"], response["status"],
                                                       response["body"].encode("latin-1"))

    def _group(self, scope: tuple) -> dict:
        # caller holds the lock (or builds the ledger)
        group = self._groups.get(scope[:-1])
        if group is None:
            group = self._groups[tuple(map(sys.intern, scope[:-1]))] = {}
        return group

    def _kept(self, scope: tuple) -> _Entry | bytes | None:
        group = self._groups.get(scope[:-1])
        return group.get(scope[-1]) if group is not None else None

    def begin(self, scope: tuple, now: datetime, ttl: timedelta, fingerprint: Any = None,
              wait: float | None = None) -> tuple[str, Any]:
        """Claim ``scope``; with ``wait`` a duplicate blocks until the first finishes."""
        with self._lock:
            entry = self._kept(scope)
            if entry.__class__ is bytes and (now - EPOCH) // MICROSECOND - _HEAD.unpack_from(entry)[1] > ttl // MICROSECOND:
                entry = None
            if entry is None:
                self._group(scope)[scope[-1]] = _Entry(at=now, fingerprint=fingerprint)
                return NEW, None
        if entry.__class__ is bytes:
            return REPLAY, self._unpack(scope, entry)
        if not entry.done.is_set() and wait:
            entry.done.wait(wait)
        if entry.done.is_set() and entry.response is not None:
            return REPLAY, entry.response
        return IN_FLIGHT, entry.fingerprint

    def fingerprint(self, scope: tuple) -> Any:
        with self._lock:
            entry = self._kept(scope)
        if entry.__class__ is bytes:
            length = _HEAD.unpack_from(entry)[2]
            return marshal.loads(entry[_HEAD.size:_HEAD.size + length])
        return entry.fingerprint if entry else None

    def _done(self, scope: tuple, at: datetime, fingerprint: Any, status: int, body: bytes) -> bytes:
        provider = scope[0]
        primer = self._primers.get(provider)
        if primer is None:
            with self._lock:
                primer = self._primers.setdefault(provider, body)
        # level 6 and no zlib header: ~145 B for a payment's 1.5 KB answer against ~173 B at
        # level 1 with one, for ~5 us more on the request that finishes the key
        packer = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=primer)
        mark = marshal.dumps(fingerprint)
        return (_HEAD.pack(status, (at - EPOCH) // MICROSECOND, len(mark)) + mark
                + packer.compress(body) + packer.flush())

    def _unpack(self, scope: tuple, done: bytes) -> tuple[int, bytes]:
        status, _, length = _HEAD.unpack_from(done)
        packed = memoryview(done)[_HEAD.size + length:]
        return status, zlib.decompressobj(-15, zdict=self._primers[scope[0]]).decompress(packed)

    def finish(self, scope: tuple, response: tuple[int, bytes]) -> None:
        """``response``: the answer's status and body, replayed byte for byte."""
        status, body = response
        with self._lock:
            entry = self._kept(scope)
            if entry is None or entry.__class__ is bytes:
                return
        # compressed outside the lock every key's request takes
        done = self._done(scope, entry.at, entry.fingerprint, status, body)
        entry.response = response   # what duplicates that wait for ``done`` take
        with self._lock:
            if self._kept(scope) is entry:   # else reset while it was compressed
                self._groups[scope[:-1]][scope[-1]] = done
                # saved before the answer leaves, so a client never sees an answer a restart
                # forgets (latin-1 round-trips any byte)
                self._state.put(_SPACE, json.dumps(scope), {
                    "at": entry.at.isoformat(), "fingerprint": entry.fingerprint,
                    "response": {"status": status, "body": body.decode("latin-1")}}, scope[1] if len(scope) > 1 else None)
        entry.done.set()

    def abort(self, scope: tuple) -> None:
        with self._lock:
            group = self._groups.get(scope[:-1])
            entry = group.pop(scope[-1], None) if group is not None else None
            if entry.__class__ is bytes:
                self._state.delete(_SPACE, json.dumps(scope))
        if entry.__class__ is _Entry:
            entry.done.set()

    def reset(self, tenant: str | None = None) -> None:
        """Scopes are tuples whose second item is the tenant."""
        with self._lock:
            if tenant is None:
                self._groups.clear()
            else:
                for k in [k for k in self._groups if len(k) > 1 and k[1] == tenant]:
                    del self._groups[k]
            self._state.clear(_SPACE, tenant)
