"""Object store: thread-safe, O(1) writes, tenant-scoped reads.

Objects are plain dicts keyed by (provider, kind, id); keys starting with ``_`` are the sandbox's
own bookkeeping, which ``public`` leaves out of what a client sees. Ids are globally unique, so a
hosted page (which carries no credentials) can find its object by id alone, while API reads pass
the caller's tenant and get ``None`` for anybody else's object — the provider then answers its own
404.

Callers mutate objects in place while holding ``store.lock`` and then call ``put`` again so a
persistent store can write the change through. The single re-entrant lock is what keeps two
concurrent captures from both seeing the same available balance.

Secondary indexes (``add_index``) make a list filter cost its page, not the number stored: per
(provider, tenant, kind, field) each value holds the creation numbers of the objects carrying it,
sorted, so a page newest first is a slice from the end, and an object's place in it (a cursor) is a
bisect by its number (``select``). ``put`` compares the values an object had when last stored with
the ones it has now, so in-place mutation followed by ``put`` stays correct. A value several objects
share keeps their numbers in an array of machine integers: in a list, each number would be an
entry every full collection of the cyclic GC walks, and a value such as a status holds most objects.

Compact storage: only the most recently used objects (``hot``) stay live dicts; the rest are kept
compressed (a tenth of the memory, and nothing for the cyclic GC to walk) and become live dicts
again when read. An object is serialized with marshal where marshal can carry it (JSON-like values:
about pickle's time, up to a fifth smaller compressed) and with pickle otherwise (a datetime,
say); a kind that once needed pickle keeps it, so marshal is not tried and refused for every object
of it. An object is compacted only while nobody but the store refers to it, so a caller holding a
dict always mutates the one the store holds, exactly as if all were live. Compression is primed per
(provider, kind) with the first object compacted: objects of one kind share their keys and most
values, so each costs a few hundred bytes.

Objects leave the live set as they are, and one compressor thread compacts them later, in
batches: it serializes a batch under the lock and compresses it outside the lock. Serializing 64
objects one after another, with the serializer's code and the kind's layout warm, costs half of
what 64 serializations spread over 64 requests do (a 2 KB payment: ~11 us against ~25 us),
and takes that work off the request. zlib lets go of the interpreter lock while it deflates: a
request thread doing so waits to get the interpreter back behind the other requests (three more
thread switches per write, in the server), and doing so while holding the store's lock makes
every request behind it wait for the store too. The compressor's deflate runs beside the request
threads instead. Until compacted the object stays readable, and a read or write in between takes
it back live: the same dict, if its batch was not serialized yet. A thread that writes without a
pause starves the compressor of the interpreter; past ``_STARVED`` objects waiting, it serializes
what it pushes out itself.
"""
from __future__ import annotations

import json
import logging
import marshal
import mmap
import pickle
import queue
import sys
import threading
import time
import weakref
import zlib
from array import array
from bisect import bisect_left, insort
from collections import OrderedDict
from datetime import datetime
from itertools import chain, islice
from typing import Any, Callable, Hashable, Iterator

from .memo import Memo
from .state import Deferred

Key = tuple[str, str, str]
Extract = Callable[[dict], Hashable]

# references to a live dict inside _shrink: the store's map, the local name, getrefcount's argument
_STORE_ONLY = 3
# objects awaiting compaction, at most: past it they are compacted under the lock,
# which bounds memory when one long operation holds the lock
_UNPACKED_LIMIT = 1000
# objects handed to the compressor thread at once: one wake of it per batch
_BATCH = 64
# objects waiting for the compressor past which the thread pushing them out serializes each itself:
# one thread writing without a pause (a bulk load, a state file read back) holds the interpreter
# and the compressor falls behind; a thousand dicts waiting, then let go together, left holes in
# memory (100k payments stored in one go took 1,637 B each, against 1,332 serialized at once)
_STARVED = 2 * _BATCH
_NOTHING: dict = {}   # read only
# an ordered read's objects looked at per hold of the lock
_ORDER_CHUNK = 64
# values of an index a callable is asked before its share of them decides between walk and pick
_SAMPLE = 256
# objects an ordered read sorts and reads from at most; more are a set its walk looks numbers up in
_PICK = 4096
# rows a walk asks the indexed values of before it takes the set of the objects that match
_WALK_BUDGET = 4096
log = logging.getLogger("simulator.store")
_MARSHALLED, _PICKLED = b"m", b"p"


_private_keys = Memo(1024)   # an object's keys, in order -> those of them that are bookkeeping


def public(obj: dict) -> dict:
    """``obj`` without its bookkeeping keys (``_`` first), in its own key order."""
    # objects of one kind share one key layout: the keys to drop are found once per layout, and
    # a C-level copy with a few deletions beats filtering every key in Python
    layout = tuple(obj)
    private = _private_keys.get(layout)
    if private is None:
        private = _private_keys.keep(layout, tuple(k for k in layout if k.startswith("_")))
    shown = obj.copy()
    for key in private:
        del shown[key]
    return shown


_discards: queue.SimpleQueue | None = None
_discards_started = threading.Lock()


def discard(*containers: dict) -> None:
    """Free big dicts on a background thread, a chunk at a time: freeing 100k objects at once
    takes a third of a second, which neither a reset nor the requests after it should wait for.

    One thread frees everything handed over, so a reset that hands over the store's, the index's
    and the timeline's maps starts no thread (starting one waits for it to run, and with others
    freeing that wait was ~5 ms of the interpreter's switch interval each). It waits a moment
    before freeing, so the reset that handed them over answers first, and frees in small chunks (a
    live object of a few nested maps takes ~10 µs), letting the interpreter go after each."""
    def small(held: dict) -> bool:   # nested maps count: per-object maps are keyed by group first
        return all(len(v) <= 1000 for v in held.values() if isinstance(v, dict))

    if sum(map(len, containers)) < 1000 and all(map(small, containers)):   # freeing here is quicker
        return
    global _discards
    with _discards_started:
        if _discards is None:
            _discards = queue.SimpleQueue()
            threading.Thread(target=_free, args=(_discards,), name="discard", daemon=True).start()
    _discards.put(containers)


def _free(handed: queue.SimpleQueue) -> None:
    while True:
        todo = list(handed.get())
        time.sleep(0.02)
        while todo:
            held = todo.pop()
            while held:
                for _ in range(min(len(held), 100)):
                    value = held.popitem()[1]
                    if isinstance(value, dict) and len(value) > 1000:
                        todo.append(value)
                time.sleep(0)   # let the request threads have the interpreter


class _Staging:
    """Where the bytes of objects serialized ahead of their compression wait: in anonymous mappings,
    each unmapped once nothing in it waits any more. Kept on the heap instead, bytes waiting for
    their batch outlived what was allocated meanwhile and left holes the allocator could not give
    back (15 MiB more at 100k payments stored in one go)."""
    SIZE = 1 << 20

    def __init__(self) -> None:
        self._map: mmap.mmap | None = None
        self._fill = 0

    def keep(self, raw: bytes) -> memoryview:
        n = len(raw)
        if self._map is None or self._fill + n > len(self._map):
            self._map, self._fill = mmap.mmap(-1, max(self.SIZE, n)), 0
        start, self._fill = self._fill, self._fill + n
        self._map[start:self._fill] = raw
        return memoryview(self._map)[start:self._fill]


def _unpack(raw: bytes | memoryview) -> dict:
    """An object from its bytes outside the live set (see ``MemoryStore._pack``)."""
    view = memoryview(raw)
    return marshal.loads(view[1:]) if view[:1] == _MARSHALLED else pickle.loads(view[1:])


def _waiting(leaving: dict | bytes | memoryview) -> dict:
    """An object that left the live set and is not compressed yet: the dict itself, until its batch
    is serialized."""
    return leaving if leaving.__class__ is dict else _unpack(leaving)


class _Compressor:
    """The thread that compresses what was set aside to compress: the objects that left a store's
    live set, the answers of finished idempotency keys. ``hand_over(owner)`` has it call
    ``owner.compact()``."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hand_over(self, owner) -> None:
        self._queue.put(weakref.ref(owner))   # an owner nobody uses any more is not kept for this
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="sandbox-compressor", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            owner = self._queue.get()()
            try:
                if owner is not None:
                    owner.compact()
            except Exception:   # what waits stays readable uncompressed; the next batch tries again
                log.exception("compressing %s failed", type(owner).__name__)
            owner = None


COMPRESSOR = _Compressor()


def _field(name: str) -> Extract:
    def value(obj: dict):
        v = obj.get(name)
        return v if isinstance(v, (str, int)) else None
    return value


def _members(value: Hashable) -> frozenset:
    """The values an object holds for a field: an extract's frozenset holds several."""
    if value is None:
        return frozenset()
    return value if value.__class__ is frozenset else frozenset((value,))


def _holding(values: dict[str, Hashable], test: Hashable | Callable[[Hashable], bool]) -> Callable[[str], bool]:
    """Whether the object of an id holds a value that ``test`` is, or passes (a callable)."""
    passes = test if callable(test) else test.__eq__

    def holds(id: str) -> bool:
        value = values.get(id)
        if value is None:
            return False
        if value.__class__ is frozenset:
            return any(passes(v) is True for v in value)
        return passes(value) is True
    return holds


class _Page:
    """A page an ordered read fills: the objects ``keep`` holds for past the first ``skip`` of them,
    up to ``limit``, and whether one more follows."""
    __slots__ = ("skip", "limit", "items", "more")

    def __init__(self, offset: int, limit: int) -> None:
        self.skip, self.limit, self.items, self.more = offset, limit, [], False

    def offer(self, store: "MemoryStore", key: Key, keep: Callable[[dict], bool]) -> bool:
        """Read the object of ``key`` for the page (the store's lock held); True once one more than
        the page holds was found."""
        obj = store._peek(key)
        if not keep(obj):
            return False
        if self.skip:
            self.skip -= 1
        elif len(self.items) < self.limit:
            self.items.append(store._adopt(key, obj))
        else:
            self.more = True
        return self.more


class _Asked:
    """Whether the object of a creation number holds what an ordered read asks: among ``numbers``
    (None: any), and passing each of ``checks`` (see ``_holding``)."""
    __slots__ = ("numbers", "holds")

    def __init__(self, id_of: "_Numbered", checks: list[Callable[[str], bool]], numbers: set[int] | None = None):
        self.numbers = numbers
        if numbers is None:
            self.holds = lambda seq: all(check(id_of[seq]) for check in checks)
        elif checks:
            self.holds = lambda seq: seq in numbers and all(check(id_of[seq]) for check in checks)
        else:
            self.holds = numbers.__contains__


def _by_order(values: dict[int, str]) -> Callable[[int], tuple[str, int]]:
    """What a creation number sorts by in its kind's order: the order's value, then creation."""
    return lambda seq: (values[seq], seq)


class _Numbered:
    """Creation number -> id, ``None`` once deleted. As one list, a million ids are a container the
    cyclic GC walks on every full collection, one cache miss per id (~30 ms a collection at a
    million stored); held in tuples of ``CHUNK``, which the GC stops tracking once it has seen
    they hold only strings, it walks a list of a thousand."""
    CHUNK = 1024

    def __init__(self) -> None:
        self._full: list[tuple] = []
        self._tail: list[str | None] = []

    def __len__(self) -> int:
        return len(self._full) * self.CHUNK + len(self._tail)

    def append(self, id: str) -> None:
        tail = self._tail
        tail.append(id)
        if len(tail) == self.CHUNK:
            self._full.append(tuple(tail))
            self._tail = []

    def __getitem__(self, number: int) -> str | None:
        chunk, at = divmod(number, self.CHUNK)
        return self._full[chunk][at] if chunk < len(self._full) else self._tail[at]

    def forget(self, number: int) -> None:
        chunk, at = divmod(number, self.CHUNK)
        if chunk < len(self._full):
            held = self._full[chunk]
            self._full[chunk] = held[:at] + (None,) + held[at + 1:]
        else:
            self._tail[at] = None


class MemoryStore:
    # live dicts kept; a handful covers a request, a thousand the objects a load keeps touching
    HOT = 1000

    def __init__(self, hot: int | None = None) -> None:
        self.lock = threading.RLock()
        self.hot = self.HOT if hot is None else hot
        self._hot: OrderedDict[Key, dict] = OrderedDict()   # the live objects, least recently used first
        # Per-object maps are keyed by id within (provider, kind) and hold only strings, numbers and
        # bytes: such dicts are not tracked by the cyclic GC, whose full passes would otherwise walk
        # every entry, a quarter of a second at a million objects.
        self._cold: dict[tuple[str, str], dict[str, bytes]] = {}   # the compacted objects
        # leaving the live set: key -> the dict until the compressor serializes its batch (or its
        # bytes in _staging, serialized by a writer that starves the compressor), then its bytes
        # until they are compressed; those bytes tell a compression whether the object was taken
        # back meanwhile
        self._leaving: dict[Key, dict | bytes | memoryview] = {}
        self._staging = _Staging()
        self._to_compress: list[Key] = []
        self._handed_over = False   # the compressor thread is to take _to_compress
        self._primers: dict[tuple[str, str], bytes] = {}   # (provider, kind) -> compression dictionary
        self._pickled: set[tuple[str, str]] = set()   # (provider, kind) marshal could not carry
        self._tenant_of: dict[tuple[str, str], dict[str, str]] = {}
        # per (provider, tenant, kind): insertion-ordered ids, for listing without a scan; each id
        # maps to itself, so every map shares the one string however many copies callers pass
        self._index: dict[tuple[str, str, str], dict[str, str]] = {}
        # secondary indexes, declared once at start: (provider, kind) -> [(field, extract, the key of
        # the field's values in _values, built here rather than on every write)]
        self._indexed: dict[tuple[str, str], list[tuple[str, Extract, tuple[str, str, str]]]] = {}
        # (provider, kind) -> the field each tenant's objects of it are kept sorted by (``declare``)
        self._orders: dict[tuple[str, str], str] = {}
        self._clear_indexes()
        # called under the lock as fn(provider, kind, id, tenant, obj) after every put, with obj None
        # after a delete, and with every argument None once everything is dropped
        self.observers: list[Callable[[str, str, str, str, dict], None]] = []
        # called like observers with a state an object only passes through inside one write
        # (``pass_through``): what records every step (the status history) listens here too
        self.passers: list[Callable[[str, str, str, str, dict], None]] = []

    # -- compact storage ---------------------------------------------------------------------
    def _compress(self, key: Key, raw: bytes | memoryview) -> bytes:
        packer = zlib.compressobj(1, zdict=self._primers[key[:2]])
        # a copy: zlib's answer is the end of a larger buffer, cut down in place on the heap of the
        # thread that made it, where a long-lived blob would pin the rest of that buffer
        return memoryview(packer.compress(raw) + packer.flush()).tobytes()

    def compact(self) -> None:
        """Compress what left the live set now (the compressor thread does it in batches); a no-op
        while the calling thread holds the lock."""
        if self.lock._is_owned():
            return
        with self.lock:
            batch = self._take()
        if batch:
            done = self._compressed(batch)
            with self.lock:
                self._settle(done)

    def _take(self) -> list[tuple[Key, bytes | memoryview]]:
        # caller holds the lock; serializes what is still a dict
        self._handed_over = False
        keys, self._to_compress = self._to_compress, []
        batch = []
        for key in keys:
            obj = self._leaving.get(key)
            if obj.__class__ is dict:
                raw = self._serialized(key, obj)
                if raw is None:
                    del self._leaving[key]
                    self._hot[key] = obj
                    continue
                self._leaving[key] = raw
                batch.append((key, raw))
            elif obj is not None:
                batch.append((key, obj))
        return batch

    def _compressed(self, batch) -> list[tuple[Key, bytes | memoryview, bytes]]:
        return [(key, raw, self._compress(key, raw)) for key, raw in batch]

    def _settle(self, done) -> None:
        for key, raw, blob in done:
            if self._leaving.get(key) is raw:   # else read, written or deleted meanwhile
                del self._leaving[key]
                self._cold.setdefault(key[:2], {})[key[2]] = blob

    def _pack(self, key: Key, obj: dict) -> bytes:
        """The object's bytes outside the live set, the first saying how they were made."""
        if key[:2] not in self._pickled:
            try:
                return _MARSHALLED + marshal.dumps(obj)
            except ValueError:
                self._pickled.add(key[:2])
        return _PICKLED + pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)

    def _serialized(self, key: Key, obj: dict) -> bytes | None:
        """``_pack``, and the kind's compression primer if it has none; None for an object pickle
        cannot carry, which stays live."""
        try:
            raw = self._pack(key, obj)
        except (pickle.PicklingError, TypeError, AttributeError):
            return None
        self._primers.setdefault(key[:2], raw)
        return raw

    def _thaw(self, key: Key, blob: bytes) -> dict:
        return _unpack(zlib.decompressobj(zdict=self._primers[key[:2]]).decompress(blob))

    def _peek(self, key: Key) -> dict:
        """The object to read, not to keep: a compacted one is decoded without becoming live."""
        obj = self._hot.get(key)
        if obj is None:
            leaving = self._leaving.get(key)
            obj = _waiting(leaving) if leaving is not None else self._thaw(key, self._cold[key[:2]][key[2]])
        return obj

    def _unlive(self, key: Key) -> None:
        """Drop the object's form outside the live set: it is being replaced or taken back."""
        if self._leaving.pop(key, None) is None:
            del self._cold[key[:2]][key[2]]

    def _live(self, key: Key) -> dict:
        """The object as callers get it: live, and the most recently used."""
        obj = self._hot.get(key)
        if obj is not None:
            self._hot.move_to_end(key)
            return obj
        leaving = self._leaving.pop(key, None)
        obj = self._hot[key] = _waiting(leaving) if leaving is not None \
            else self._thaw(key, self._cold[key[:2]].pop(key[2]))
        return obj

    def _adopt(self, key: Key, obj: dict) -> dict:
        """Make ``obj``, just read with ``_peek``, the live object."""
        if key in self._hot:
            self._hot.move_to_end(key)
        else:
            self._unlive(key)
            self._hot[key] = obj
        return obj

    def _shrink(self) -> None:
        """Compact the least recently used objects beyond ``hot`` that nobody else holds; a held
        one moves to the back, so a caller's dict and the store's never part."""
        hot = self._hot
        excess = len(hot) - self.hot
        for _ in range(min(len(hot), excess + 8) if excess > 0 else 0):
            key = next(iter(hot))
            obj = hot[key]
            if sys.getrefcount(obj) > _STORE_ONLY:
                hot.move_to_end(key)
                continue
            if len(self._to_compress) < _STARVED:
                self._leaving[key] = obj
            else:   # the compressor is not getting the interpreter: serialize now, as it would
                raw = self._serialized(key, obj)
                if raw is None:
                    hot.move_to_end(key)
                    continue
                self._leaving[key] = self._staging.keep(raw)
            self._to_compress.append(key)
            del hot[key]
            excess -= 1
            if not excess:
                break
        if len(self._to_compress) > _UNPACKED_LIMIT:   # the compressor is behind: do it here
            self._settle(self._compressed(self._take()))
        elif len(self._to_compress) >= _BATCH and not self._handed_over:
            self._handed_over = True
            COMPRESSOR.hand_over(self)

    def _exists(self, key: Key) -> bool:
        return key[2] in self._tenant_of.get(key[:2], _NOTHING)

    # -- the store -----------------------------------------------------------------------------
    def put(self, provider: str, kind: str, id: str, obj: dict, tenant: str) -> dict:
        # each request spells its tenant afresh: the store keeps one string per object otherwise
        tenant = sys.intern(tenant)
        with self.lock:
            tenants = self._tenant_of.setdefault((provider, kind), {})
            previous = tenants.get(id)
            if previous is not None and previous != tenant:
                raise KeyError(f"{kind} {id} belongs to another tenant")
            id = self._index.setdefault((provider, tenant, kind), {}).setdefault(id, id)
            key = (provider, kind, id)
            if previous is not None and key not in self._hot:
                self._unlive(key)
            self._hot[key] = obj
            self._hot.move_to_end(key)
            tenants[id] = tenant
            if (provider, kind) in self._indexed:
                self._reindex(key, tenant, obj)
            self._persist(key, tenant, obj)
            for observe in self.observers:
                observe(provider, kind, id, tenant, obj)
            self._shrink()
        return obj

    def pass_through(self, provider: str, kind: str, id: str, obj: dict, tenant: str) -> None:
        """``obj`` is in a state it leaves before this write's ``put``, under the same hold of the
        lock: nobody can read it, so only ``passers`` hear of it, and the put stores the object once."""
        with self.lock:
            for observe in self.passers:
                observe(provider, kind, id, tenant, obj)

    def get(self, provider: str, kind: str, id: str, tenant: str | None = None) -> dict | None:
        with self.lock:
            owner = self._tenant_of.get((provider, kind), _NOTHING).get(id)
            if owner is None or (tenant is not None and owner != tenant):
                return None
            obj = self._live((provider, kind, id))
            self._shrink()
        return obj

    def tenant_of(self, provider: str, kind: str, id: str) -> str | None:
        with self.lock:
            return self._tenant_of.get((provider, kind), _NOTHING).get(id)

    def delete(self, provider: str, kind: str, id: str) -> None:
        key = (provider, kind, id)
        with self.lock:
            tenant = self._tenant_of.get((provider, kind), {}).pop(id, None)
            if tenant is None:
                return
            if self._hot.pop(key, None) is None:
                self._unlive(key)
            self._index.get((provider, tenant, kind), {}).pop(id, None)
            if (provider, kind) in self._indexed:
                self._reindex(key, tenant, None)
            self._unpersist(key)
            for observe in self.observers:
                observe(provider, kind, id, tenant, None)

    def _page(self, provider: str, kind: str, ids) -> list[dict]:
        page = [self._live((provider, kind, i)) for i in ids]
        self._shrink()
        return page

    def list(self, provider: str, kind: str, tenant: str) -> list[dict]:
        with self.lock:
            return self._page(provider, kind, self._index.get((provider, tenant, kind), ()))

    def newest(self, provider: str, kind: str, tenant: str, offset: int, limit: int) -> list[dict]:
        """One page of a listing, newest first, without copying the whole index."""
        with self.lock:
            ids = self._index.get((provider, tenant, kind), {})
            offset = min(offset, len(ids))   # islice takes no offset past sys.maxsize
            return self._page(provider, kind, islice(reversed(ids), offset, offset + limit))

    def size(self, provider: str, kind: str, tenant: str) -> int:
        with self.lock:
            return len(self._index.get((provider, tenant, kind), ()))

    def groups(self) -> list[tuple[str, str, str, int]]:
        """(provider, tenant, kind, count) of every non-empty listing."""
        with self.lock:
            return [(*k, len(ids)) for k, ids in self._index.items() if ids]

    def items(self, provider: str, kind: str, tenant: str) -> Iterator[tuple[str, dict]]:
        """(id, object) of every object in a listing, to read and not to mutate: compacted ones
        are decoded one at a time and stay compacted."""
        with self.lock:
            ids = list(self._index.get((provider, tenant, kind), ()))
        for i in ids:
            with self.lock:
                obj = self._peek((provider, kind, i)) if self._exists((provider, kind, i)) else None
            if obj is not None:
                yield i, obj

    # -- secondary indexes -------------------------------------------------------------------
    def add_index(self, provider: str, kind: str, field: str, extract: Extract | None = None) -> None:
        """Make ``where(provider, kind, tenant, field, value)`` an index lookup. ``extract(obj)``
        gives the indexed value (default: the field's value if a string or integer), None for none."""
        self.declare(provider, kind, {field: extract})

    def declare(self, provider: str, kind: str, indexes: dict[str, Extract | None] | None = None,
                order: str | None = None) -> None:
        """``add_index`` for each of ``indexes``, and with ``order`` each tenant's ``kind`` objects
        kept sorted by that field (a string; instants written in one format sort as text), then by
        creation, so ``ordered`` reads a page without sorting them all. Objects already stored (a
        state file) are each decoded once for all of them, not once for each."""
        with self.lock:
            specs = self._indexed.setdefault((provider, kind), [])
            added = False
            for field, extract in (indexes or {}).items():
                if all(spec[0] != field for spec in specs):
                    specs.append((field, extract or _field(field), (provider, kind, field)))
                    added = True
            if order is not None and self._orders.get((provider, kind)) != order:
                self._orders[(provider, kind)] = order
                added = True
            if added:
                for group, ids in self._index.items():
                    if group[0] == provider and group[2] == kind:
                        for i in ids:
                            self._reindex((provider, kind, i), group[1], self._peek((provider, kind, i)))

    def _clear_indexes(self) -> None:
        self._seq_of: dict[tuple[str, str], dict[str, int]] = {}       # id -> creation number
        self._values: dict[tuple[str, str, str], dict[str, Hashable]] = {}   # (provider, kind, field) -> id -> value
        self._id_of = _Numbered()                                      # creation number -> id
        # value -> the creation number of the one object holding it (most references), or, in a map
        # of its own (an array is a container the GC tracks, though it walks none of its numbers), the
        # sorted numbers of several
        self._buckets: dict[tuple[str, str, str, str], dict[Hashable, int]] = {}
        self._shared: dict[tuple[str, str, str, str], dict[Hashable, array]] = {}
        # (provider, kind, field) -> the tenants with a bucket group, for a lookup in any tenant
        self._indexed_tenants: dict[tuple[str, str, str], dict[str, None]] = {}
        self._maps: dict[tuple[str, str, str], list[tuple[dict, dict, dict]]] = {}   # see _maps_of
        # (provider, tenant, kind) -> creation numbers sorted by (the order's value, number), and
        # (provider, kind) -> number -> that value: both hold only numbers and strings
        self._sorted: dict[tuple[str, str, str], array] = {}
        self._order_values: dict[tuple[str, str], dict[int, str]] = {}

    def _bucket(self, provider: str, tenant: str | None, kind: str, field: str,
                value: Hashable) -> array | list | tuple:
        if tenant is None:   # every tenant's: one bucket per tenant that has the field indexed
            return sorted(seq for t in self._indexed_tenants.get((provider, kind, field), ())
                          for seq in self._bucket(provider, t, kind, field, value))
        group = (provider, tenant, kind, field)
        seq = self._buckets.get(group, _NOTHING).get(value)
        return (seq,) if seq is not None else self._shared.get(group, _NOTHING).get(value, ())

    def _maps_of(self, provider: str, tenant: str, kind: str, specs: list) -> list[tuple[dict, dict, dict]]:
        """(values, lone numbers, shared numbers) of each index of ``specs`` for the tenant's kind,
        made where missing and kept: a write looks them up once, not once per field."""
        maps = []
        for field, _, values_key in specs:
            group = (provider, tenant, kind, field)
            if group not in self._buckets:
                self._indexed_tenants.setdefault((provider, kind, field), {})[tenant] = None
            maps.append((self._values.setdefault(values_key, {}), self._buckets.setdefault(group, {}),
                         self._shared.setdefault(group, {})))
        self._maps[(provider, tenant, kind)] = maps
        return maps

    def _reindex(self, key: Key, tenant: str, obj: dict | None) -> None:
        provider, kind, id = key
        scope = key[:2]   # (provider, kind)
        # get, then set: setdefault would build its empty default on every write
        seqs = self._seq_of.get(scope)
        if seqs is None:
            seqs = self._seq_of[scope] = {}
        seq = seqs.get(id)
        if seq is None:
            if obj is None:
                return
            seq = seqs[id] = len(self._id_of)
            self._id_of.append(id)
        order = self._orders.get(scope)
        if order is not None:
            value = None if obj is None else obj.get(order)
            self._reorder(provider, tenant, kind, seq, value if obj is None or value.__class__ is str else "")
        if obj is None:
            del seqs[id]
            self._id_of.forget(seq)
        specs = self._indexed[scope]
        maps = self._maps.get((provider, tenant, kind))
        if maps is None or len(maps) != len(specs):
            maps = self._maps_of(provider, tenant, kind, specs)
        for (_, extract, _), (held, ones, shared) in zip(specs, maps):
            before = held.get(id)
            after = None if obj is None else extract(obj)
            if before == after:
                continue
            if after is None:
                del held[id]
            else:
                held[id] = after
            if before.__class__ is frozenset or after.__class__ is frozenset:   # several values
                olds, news = _members(before), _members(after)
                gone, come = olds - news, news - olds
            else:
                gone, come = () if before is None else (before,), () if after is None else (after,)
            for value in gone:
                if ones.pop(value, None) is None:
                    bucket = shared[value]
                    del bucket[bisect_left(bucket, seq)]
                    if len(bucket) == 1:
                        ones[value] = shared.pop(value)[0]
            for value in come:
                if value in shared:
                    insort(shared[value], seq)
                elif value in ones:
                    shared[value] = array("q", sorted((ones.pop(value), seq)))
                else:
                    ones[value] = seq

    # -- orders ----------------------------------------------------------------------------------
    def _reorder(self, provider: str, tenant: str, kind: str, seq: int, value: str | None) -> None:
        """Move creation number ``seq`` to its place for ``value``; None takes it out."""
        values = self._order_values.get((provider, kind))
        if values is None:
            values = self._order_values[(provider, kind)] = {}
        before = values.get(seq)
        if before == value:
            return
        row = self._sorted.get((provider, tenant, kind))
        if row is None:
            row = self._sorted[(provider, tenant, kind)] = array("q")
        by = _by_order(values)
        if before is not None:
            # the last one needs no search: an object written twice in a row, or a tenant's reset
            del row[-1 if row[-1] == seq else bisect_left(row, (before, seq), key=by)]
        if value is None:
            del values[seq]
            return
        values[seq] = value
        if not row or by(row[-1]) < (value, seq):   # a write stamped now: the common case, at the end
            row.append(seq)
        else:
            insort(row, seq, key=by)

    def ordered(self, provider: str, kind: str, tenant: str, keep: Callable[[dict], bool], offset: int,
                limit: int, match: list[tuple[str, Any]] = (),
                any_of: list[tuple[str, Hashable]] = ()) -> tuple[list[dict], bool]:
        """One page of the objects ``keep`` holds for, greatest ``declare``d order value first (among
        equals the newest created first), after ``offset`` of them; and whether any follow it.

        It reads from the greatest down and stops one past the page: an unfiltered page costs the
        page, a filtered one also what ``keep`` turned down on the way. ``keep`` sees objects to
        read; only the page's become live. The lock is taken a chunk at a time, and each chunk
        starts below the last one read, wherever the objects written meanwhile moved.

        ``match`` names what ``keep`` asks of indexed fields, as ``(field, test)``: a value the
        object holds, or a callable that one of its values passes (an amount range, say), asked
        once per distinct value. The pair the fewest objects hold decides how the page is found
        (``_plan``), and no object an index turns down is read; ``keep`` still decides each one
        read (an object written meanwhile is read as it is then).

        ``any_of``: only objects holding any of these indexed ``(field, value)`` pairs (the field
        ``id``: the object's own id), a search of one value in several fields; they are sorted by
        the order and read till the page is full, ``match`` left to ``keep``."""
        if any_of:
            with self.lock:
                seqs = self._greatest_first(provider, kind, self._holding_any(provider, kind, tenant, any_of))
            return self._ordered_among(provider, kind, tenant, seqs, keep, _Page(offset, limit))
        passes, mode = None, None
        if match:
            with self.lock:
                plan = self._plan(provider, kind, tenant, match)
            if plan.__class__ is list:
                return self._ordered_among(provider, kind, tenant, plan, keep, _Page(offset, limit))
            mode, members = plan
            passes = members.holds
        page = _Page(offset, limit)
        last: tuple[str, int] | None = None
        walked = 0
        rest: list[int] | None = None   # the numbers left to read, once sorted
        while not page.more:
            with self.lock:
                row = self._sorted.get((provider, tenant, kind))
                if not row:   # none stored, or a reset between two chunks took them
                    break
                values = self._order_values[(provider, kind)]
                if mode is not None and walked > _WALK_BUDGET:
                    # the matches lie further down than their share says. Asked by their indexed
                    # values, they become the set of the fewest pair's objects (a look-up a row, to
                    # the end: sorting a quarter of the listing or more costs more than that walk);
                    # held by under a quarter, the rest of them are sorted and read
                    if mode == "ask":
                        mode, members = "set to the end", self._members(provider, kind, tenant, match)
                        passes = members.holds
                    elif mode == "set":
                        by = _by_order(values)
                        rest = sorted((seq for seq in members.numbers   # some may be gone since
                                       if seq in values and by(seq) < last and members.holds(seq)),
                                      key=by, reverse=True)
                        break
                end = len(row) if last is None else bisect_left(row, last, key=_by_order(values))
                if not end:
                    break
                chunk = row[max(0, end - _ORDER_CHUNK):end]
                walked += len(chunk)
                # where the next chunk starts: taken now, since ``keep`` may write what it reads
                last = (values[chunk[0]], chunk[0])
                for seq in reversed(chunk):
                    if passes is not None and not passes(seq):
                        continue
                    key = (provider, kind, self._id_of[seq])
                    if not self._exists(key):   # deleted by ``keep``
                        continue
                    if page.offer(self, key, keep):
                        break
                self._shrink()
        if rest is not None:
            return self._ordered_among(provider, kind, tenant, rest, keep, page)
        return page.items, page.more

    def _plan(self, provider: str, kind: str, tenant: str, match: list[tuple[str, Any]]):
        """How ``ordered`` finds a page for ``match``, by the pair the fewest objects hold: up to
        ``_PICK`` of them, the list of the numbers of those holding every pair, sorted by the order
        (a page is read from it); more, under a quarter of the listing, ``("set", asked)``: the
        walk in order reads only the numbers in the set of that pair's objects; a quarter or more
        (a page is then near the top, as likely as not), ``("ask", asked)``: the walk asks each
        row's indexed values. Caller holds the lock."""
        total = len(self._index.get((provider, tenant, kind), ()))
        fewest: tuple[int, int, list] | None = None   # (count, the pair's place, its buckets)
        # values first: a bucket's size is known at once, and a small one spares the callables
        for at in sorted(range(len(match)), key=lambda i: callable(match[i][1])):
            field, test = match[at]
            if callable(test) and fewest is not None and fewest[0] <= _ORDER_CHUNK:
                break
            count, pieces = self._pieces((provider, tenant, kind, field), test, total // 4 + 1)
            if count is not None and count * 4 < total and (fewest is None or count < fewest[0]):
                fewest = (count, at, pieces)
        if fewest is None:
            return "ask", _Asked(self._id_of, self._checks(provider, kind, match))
        count, at, pieces = fewest
        if count > _PICK:
            return "set", self._members(provider, kind, tenant, match, (at, pieces))
        asked = _Asked(self._id_of, self._checks(provider, kind, match, but=at))
        # a set: an object holding several of a field's values is in several of its buckets
        return self._greatest_first(provider, kind, {seq for piece in pieces for seq in piece if asked.holds(seq)})

    def _greatest_first(self, provider: str, kind: str, seqs: set[int]) -> list[int]:
        """``seqs`` sorted as ``ordered`` reads them: greatest order value first, then newest
        (newest first alone for a kind with no declared order). Caller holds the lock."""
        values = self._order_values.get((provider, kind))
        return sorted(seqs, key=_by_order(values) if values is not None else None, reverse=True)

    def _members(self, provider: str, kind: str, tenant: str, match: list[tuple[str, Any]],
                 fewest: tuple[int, list] | None = None) -> "_Asked":
        """The objects holding every pair of ``match``: the set of those holding the pair the
        fewest hold (``fewest``: its place and buckets, else counted here), and of them those the
        others' indexed values pass. Caller holds the lock."""
        if fewest is None:
            counted = [(*self._pieces((provider, tenant, kind, field), test, None), at)
                       for at, (field, test) in enumerate(match)]
            _, pieces, at = min(counted, key=lambda c: c[0])
        else:
            at, pieces = fewest
        return _Asked(self._id_of, self._checks(provider, kind, match, but=at), set(chain.from_iterable(pieces)))

    def _checks(self, provider: str, kind: str, match: list[tuple[str, Any]],
                but: int | None = None) -> list[Callable[[str], bool]]:
        """An id's check by its indexed values (``_holding``) for each pair of ``match`` but the one at ``but``."""
        return [_holding(self._values.get((provider, kind, field), _NOTHING), test)
                for i, (field, test) in enumerate(match) if i != but]

    def _pieces(self, group: tuple[str, str, str, str], test: Any, enough: int | None) -> tuple[int | None, list]:
        """(how many objects, their numbers as a list of buckets) of the values of ``group`` that
        ``test`` is, or passes (a callable). The count is None, and the buckets unfinished, once it
        reaches ``enough``, or once a quarter of the first ``_SAMPLE`` values held by one object
        each pass (a text per object: a quarter of all likely do)."""
        ones, shared = self._buckets.get(group, _NOTHING), self._shared.get(group, _NOTHING)
        if not callable(test):
            seq = ones.get(test)
            if seq is not None:
                return 1, [(seq,)]
            bucket = shared.get(test, ())
            return len(bucket), [bucket]
        pieces, count = [], 0
        for value, bucket in shared.items():   # the big buckets first: a common value ends it soonest
            if test(value) is True:
                pieces.append(bucket)
                count += len(bucket)
                if enough is not None and count >= enough:
                    return None, pieces
        lone: list[int] = []
        pieces.append(lone)
        for tested, (value, seq) in enumerate(ones.items(), 1):
            if test(value) is True:
                lone.append(seq)
                if enough is not None and count + len(lone) >= enough:
                    return None, pieces
            if enough is not None and tested == _SAMPLE and len(ones) > 4 * _SAMPLE and 4 * len(lone) >= _SAMPLE:
                return None, pieces
        return count + len(lone), pieces

    def _ordered_among(self, provider: str, kind: str, tenant: str, seqs: list[int], keep: Callable[[dict], bool],
                       page: "_Page") -> tuple[list[dict], bool]:
        """``ordered``'s page from the creation numbers ``_plan`` picked, sorted by the order, read
        a chunk at a time."""
        for at in range(0, len(seqs), _ORDER_CHUNK):
            with self.lock:
                tenants, numbered = self._tenant_of.get((provider, kind), _NOTHING), len(self._id_of)
                for seq in seqs[at:at + _ORDER_CHUNK]:
                    id = self._id_of[seq] if seq < numbered else None
                    # deleted meanwhile, or a reset numbered another object so
                    if id is None or tenants.get(id) != tenant:
                        continue
                    if page.offer(self, (provider, kind, id), keep):
                        break
                self._shrink()
            if page.more:
                break
        return page.items, page.more

    def where(self, provider: str, kind: str, tenant: str | None, field: str, value: Hashable,
              offset: int = 0, limit: int | None = None, newest_first: bool = False) -> list[dict]:
        """Objects whose indexed ``field`` is ``value``, in creation order (or newest first), one
        page of them when ``limit`` is given: the cost is the page's, not the bucket's. A tenant of
        None means any tenant's (a hosted page, which carries no credentials)."""
        with self.lock:
            bucket = self._bucket(provider, tenant, kind, field, value)
            seqs = reversed(bucket) if newest_first else iter(bucket)
            offset = min(offset, len(bucket))   # islice takes no offset past sys.maxsize
            end = None if limit is None else offset + min(limit, len(bucket))
            return self._page(provider, kind, (self._id_of[s] for s in islice(seqs, offset, end)))

    def _holding_any(self, provider: str, kind: str, tenant: str, pairs: list[tuple[str, Hashable]]) -> set[int]:
        """The numbers of ``tenant``'s objects holding any of the indexed ``(field, value)`` pairs,
        the field ``id`` being the object's own id. Caller holds the lock."""
        seqs = set()
        for field, value in pairs:
            if field != "id":
                seqs.update(self._bucket(provider, tenant, kind, field, value))
            elif self._tenant_of.get((provider, kind), _NOTHING).get(value) == tenant:
                seqs.add(self._seq_of[(provider, kind)][value])   # a declared kind numbers every object
        return seqs

    def where_count(self, provider: str, kind: str, tenant: str, field: str, value: Hashable) -> int:
        with self.lock:
            return len(self._bucket(provider, tenant, kind, field, value))

    def select(self, provider: str, kind: str, tenant: str | None, match: dict[str, Hashable], offset: int = 0,
               limit: int | None = None, newest_first: bool = False, after: str | None = None,
               before: str | None = None) -> tuple[int, list[dict]] | None:
        """How many objects have every indexed ``field: value`` of ``match`` (at least one), and one
        page of them, in creation order or newest first: a list endpoint's filters and cursors.

        ``after`` and ``before`` are ids of selected objects: what follows ``after`` in the order
        asked, and of that what precedes ``before``, is what is counted and paged, ``offset`` from
        its start. None when a cursor is not among them (``before`` is looked for in what ``after``
        left). A field without an index matches nothing, as in ``where``. A whole listing is
        selected by an index whose value every object has.

        A cursor costs a bisect by its creation number and the page its objects; nothing else is
        decoded. Several fields read the smallest of their buckets and keep the numbers the others
        hold too, never decoding an object: no index holds an intersection, and the count must be
        exact, so that bucket is scanned whole.
        """
        with self.lock:
            picked = sorted(((self._bucket(provider, tenant, kind, field, value), field)
                             for field, value in match.items()), key=lambda held: len(held[0]))
            seqs = picked[0][0]
            id_of = self._id_of
            for bucket, field in picked[1:]:
                # a set of a bucket's numbers is built in C, ten times faster a number than a look-up
                # of an id's value in the index, which is cheaper only for a bucket far larger
                if len(bucket) <= 8 * len(seqs):
                    held = set(bucket)
                    seqs = [s for s in seqs if s in held]
                else:
                    values, value = self._values.get((provider, kind, field), _NOTHING), match[field]
                    seqs = [s for s in seqs if values.get(id_of[s]) == value]
            lo, hi = 0, len(seqs)
            numbers = self._seq_of.get((provider, kind), _NOTHING)

            def place(id: str) -> int | None:
                seq = numbers.get(id)
                if seq is None:
                    return None
                at = bisect_left(seqs, seq, lo, hi)
                return at if at < hi and seqs[at] == seq else None

            for cursor, following in ((after, True), (before, False)):
                if cursor is None:
                    continue
                at = place(cursor)
                if at is None:
                    return None
                if following != newest_first:   # keep what comes later in creation order
                    lo = at + 1
                else:
                    hi = at
            if newest_first:
                end = max(hi - offset, lo)
                start = lo if limit is None else max(end - limit, lo)
                page = reversed(seqs[start:end])
            else:
                start = min(lo + offset, hi)
                end = hi if limit is None else min(start + limit, hi)
                page = seqs[start:end]
            return hi - lo, self._page(provider, kind, [id_of[s] for s in page])

    def reset(self, tenant: str | None = None) -> None:
        with self.lock:
            if tenant is None:
                # the live objects too: freeing a thousand of them took ~10 ms of the reset
                discard(self._cold, self._tenant_of, self._index, self._seq_of, self._values, self._buckets,
                        self._shared, self._sorted, self._order_values, self._hot, self._leaving)
                self._cold, self._tenant_of, self._index, self._hot = {}, {}, {}, OrderedDict()
                self._leaving, self._to_compress = {}, []
                self._clear_indexes()
                self._unpersist_all()
                for observe in self.observers:
                    observe(None, None, None, None, None)
                return
            # newest first: each index bucket and order keeps creation numbers in an array, sorted,
            # and taking the last one out moves nothing, where taking the first out moves them all
            for provider, kind, id in reversed([(*group, i) for group, ids in self._tenant_of.items()
                                                for i, t in ids.items() if t == tenant]):
                self.delete(provider, kind, id)

    def count(self) -> int:
        with self.lock:
            return sum(map(len, self._tenant_of.values()))

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


_dump = json.JSONEncoder(default=_encode).encode


def _decode(obj: dict) -> Any:
    if len(obj) == 1 and "__dt__" in obj:
        return datetime.fromisoformat(obj["__dt__"])
    return obj


class SQLiteStore(MemoryStore):
    """Write-through persistence: reads stay in memory, each write is one row of the state file."""

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
        # serialized when written: an object put several times in one request is encoded once
        self._state.write(("o", *key), (tenant, Deferred(lambda: _dump(obj), self.lock)))

    def _unpersist(self, key: Key) -> None:
        self._state.write(("o", *key), None)

    def _unpersist_all(self) -> None:
        self._state.clear_objects()
