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

import itertools
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
from .store import COMPRESSOR

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
# the length of its marshalled fingerprint, how its body is kept, the fingerprint, and the body:
# as answered (_RAW), or where it lies in its batch's block (_IN_BLOCK, then a _SLICE)
_HEAD = struct.Struct(">HQHB")
_RAW, _IN_BLOCK = 0, 1
_SLICE = struct.Struct(">QII")   # the block's number, the body's offset and length in it inflated
# finished keys whose bodies are compressed together, as one block
_BATCH = 64
# waiting past which the thread finishing a key compresses them itself: one that finishes keys
# without a pause holds the interpreter, and the compressor thread falls behind
_BEHIND = 1000


class IdempotencyKeys:
    """Keys by scope: (provider, tenant, path or the provider's own scope, key).

    Clients may send a key with every payment and the clock may never pass a key's TTL, so every
    finished key is kept, and kept small: a key string in the map of its scope's first three parts
    (one tuple for all the keys of a scope, its strings interned), and one bytes object holding the
    answer's status, the key's time, its fingerprint and where its body lies in a block: the bodies
    of up to 64 keys finished one after another, compressed together (~125 B a payment's 1.5 KB
    answer). As a tuple of the four beside a tuple of the scope a key cost ~150 B more; with an
    uncompressed body, ~3 KB, more than the payment it made.

    The request that finishes a key keeps its body as answered; the compressor thread compresses
    the waiting bodies a batch at a time, in one zlib call. zlib lets go of the interpreter lock
    while it deflates, and a thread that did so waits behind the request threads to get it back:
    compressing each body on its own request (twice per key, a compression and its flush) held a
    payment sent with a key to 0.80-0.84 of one sent without, in the server, and on the compressor
    thread one body at a time, to the same. A replay inflates its block up to its body
    (~80 us for the last of 64)."""

    def __init__(self, state: NullState | None = None) -> None:
        self._lock = threading.Lock()
        self._state = state or NullState()
        # (provider, tenant, path) -> key -> _Entry while in flight, bytes once finished
        self._groups: dict[tuple, dict[str, _Entry | bytes]] = {}
        self._waiting: list[tuple[tuple, bytes]] = []   # (scope, its bytes) with a body as answered
        self._handed_over = False   # the compressor thread is to take _waiting
        # (provider, tenant, path) -> number -> [the compressed bodies of a batch of the scope's
        # keys, how many keys still point into it]: a tenant's reset drops its blocks whole
        self._blocks: dict[tuple, dict[int, list]] = {}
        self._numbers = itertools.count()
        for key, _, saved in self._state.rows(_SPACE):
            scope = tuple(json.loads(key))
            response = saved["response"]
            done = self._done(datetime.fromisoformat(saved["at"]), saved["fingerprint"], response["status"],
                              response["body"].encode("latin-1"))
            self._group(scope)[scope[-1]] = done
            self._waiting.append((scope, done))
        self.compact()

    def _group(self, scope: tuple) -> dict:
        # caller holds the lock (or builds the ledger)
        group = self._groups.get(scope[:-1])
        if group is None:
            group = self._groups[tuple(map(sys.intern, scope[:-1]))] = {}
        return group

    def _kept(self, scope: tuple) -> _Entry | bytes | None:
        group = self._groups.get(scope[:-1])
        return group.get(scope[-1]) if group is not None else None

    def _drop(self, scope: tuple, done: bytes) -> None:
        """A finished key's bytes are gone from the map: its block goes with the last key in it."""
        # caller holds the lock
        _, _, length, kept = _HEAD.unpack_from(done)
        if kept == _IN_BLOCK:
            number = _SLICE.unpack_from(done, _HEAD.size + length)[0]
            blocks = self._blocks[scope[:-1]]
            blocks[number][1] -= 1
            if not blocks[number][1]:
                del blocks[number]

    def begin(self, scope: tuple, now: datetime, ttl: timedelta, fingerprint: Any = None,
              wait: float | None = None) -> tuple[str, Any]:
        """Claim ``scope``; with ``wait`` a duplicate blocks until the first finishes."""
        with self._lock:
            entry = self._kept(scope)
            if entry.__class__ is bytes and (now - EPOCH) // MICROSECOND - _HEAD.unpack_from(entry)[1] > ttl // MICROSECOND:
                self._drop(scope, entry)
                entry = None
            if entry is None:
                self._group(scope)[scope[-1]] = _Entry(at=now, fingerprint=fingerprint)
                return NEW, None
            if entry.__class__ is bytes:
                status, _, length, kept = _HEAD.unpack_from(entry)
                start = _HEAD.size + length
                if kept == _RAW:
                    return REPLAY, (status, entry[start:])
                number, offset, size = _SLICE.unpack_from(entry, start)
                block = self._blocks[scope[:-1]][number][0]
        if entry.__class__ is bytes:
            # inflated only as far as the body's end
            return REPLAY, (status, zlib.decompressobj(-15).decompress(block, offset + size)[offset:])
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

    @staticmethod
    def _done(at: datetime, fingerprint: Any, status: int, body: bytes) -> bytes:
        mark = marshal.dumps(fingerprint)
        return _HEAD.pack(status, (at - EPOCH) // MICROSECOND, len(mark), _RAW) + mark + body

    def compact(self) -> None:
        """Compress the bodies of the keys finished since the last time, a block per batch (the
        compressor thread does it as each batch fills)."""
        with self._lock:
            waiting, self._waiting, self._handed_over = self._waiting, [], False
        by_group: dict[tuple, list] = {}
        for scope, done in waiting:
            by_group.setdefault(scope[:-1], []).append((scope, done))
        for group, waited in by_group.items():
            for at in range(0, len(waited), _BATCH):
                self._compress(group, waited[at:at + _BATCH])

    def _compress(self, group: tuple, batch: list[tuple[tuple, bytes]]) -> None:
        """One block of the bodies of ``batch``, keys of ``group`` (one zlib call)."""
        number = next(self._numbers)
        bodies, finished, offset = [], [], 0
        for scope, done in batch:
            status, at, length, _ = _HEAD.unpack_from(done)
            body = memoryview(done)[_HEAD.size + length:]
            bodies.append(body)
            finished.append(_HEAD.pack(status, at, length, _IN_BLOCK) + done[_HEAD.size:_HEAD.size + length]
                            + _SLICE.pack(number, offset, len(body)))
            offset += len(body)
        block = zlib.compress(b"".join(bodies), 6, -15)
        with self._lock:
            pointing = 0
            for (scope, done), in_block in zip(batch, finished):
                if self._kept(scope) is done:   # else aborted or reset meanwhile
                    self._groups[group][scope[-1]] = in_block
                    pointing += 1
            if pointing:
                self._blocks.setdefault(group, {})[number] = [block, pointing]

    def finish(self, scope: tuple, response: tuple[int, bytes]) -> None:
        """``response``: the answer's status and body, replayed byte for byte."""
        status, body = response
        with self._lock:
            entry = self._kept(scope)
            if entry is None or entry.__class__ is bytes:
                return
        done = self._done(entry.at, entry.fingerprint, status, body)
        entry.response = response   # what duplicates that wait for ``done`` take
        hand_over, waiting = False, 0
        with self._lock:
            if self._kept(scope) is entry:   # else reset meanwhile
                self._groups[scope[:-1]][scope[-1]] = done
                # saved before the answer leaves, so a client never sees an answer a restart
                # forgets (latin-1 round-trips any byte)
                self._state.put(_SPACE, json.dumps(scope), {
                    "at": entry.at.isoformat(), "fingerprint": entry.fingerprint,
                    "response": {"status": status, "body": body.decode("latin-1")}}, scope[1] if len(scope) > 1 else None)
                self._waiting.append((scope, done))
                waiting = len(self._waiting)
                if waiting >= _BATCH and not self._handed_over:
                    self._handed_over = hand_over = True
        entry.done.set()
        if hand_over:
            COMPRESSOR.hand_over(self)
        elif waiting > _BEHIND:
            self.compact()

    def abort(self, scope: tuple) -> None:
        with self._lock:
            group = self._groups.get(scope[:-1])
            entry = group.pop(scope[-1], None) if group is not None else None
            if entry.__class__ is bytes:
                self._drop(scope, entry)
                self._state.delete(_SPACE, json.dumps(scope))
        if entry.__class__ is _Entry:
            entry.done.set()

    def reset(self, tenant: str | None = None) -> None:
        """Scopes are tuples whose second item is the tenant."""
        with self._lock:
            if tenant is None:
                self._groups.clear()
                self._waiting = []
                self._blocks.clear()
            else:
                for k in [k for k in self._groups if len(k) > 1 and k[1] == tenant]:
                    del self._groups[k]
                    self._blocks.pop(k, None)
            self._state.clear(_SPACE, tenant)
