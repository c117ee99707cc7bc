"""Secondary indexes over the store for the dashboard, kept current by a store observer.

With 100k objects stored, a scan costs more than a page may take, so the fields the dashboard
filters on (status, reference) and the ones a recurring series is found by (card fingerprint,
link to a stored card) are indexed per (provider, tenant, kind) as objects are written. A write
pays a few dictionary operations; a filtered page costs about its own length. Within one status,
objects are listed by when they entered it, newest first; a reference search by when objects
took their references.
"""
from __future__ import annotations

import itertools
import sys
import threading
from itertools import islice

from ..core.store import discard
from . import timeline as tl

Group = tuple[str, str, str]   # provider, tenant, kind


FIELDS = ("status", "reference", "fingerprint", "link")
NONE = ((), (), (), ())


def values_of(obj: dict, own_id: str, is_card) -> tuple:
    """(status, reference, fingerprint, *links): what ``obj`` holds for each of FIELDS, None for
    nothing; an object may point at several stored cards. Values many objects share are interned."""
    status = tl.wire_status(obj)
    reference = tl.reference_of(obj)
    if reference is not None:
        reference = str(reference)
        lower = reference.lower()
        reference = reference if lower == reference else lower   # the object's own string, when it can
    fingerprint = tl.fingerprint_of(obj)
    return (sys.intern(status.lower()) if status else None, reference,
            sys.intern(fingerprint) if fingerprint else None,
            *(sys.intern(v) for v in obj.values() if isinstance(v, str) and v != own_id and is_card(v)))


def _fields(held: tuple | None) -> tuple[tuple, ...]:
    """A held record (creation number, values_of...) as one tuple of values per field."""
    if held is None:
        return NONE
    return (*(() if v is None else (v,) for v in held[1:4]), held[4:])


def _ids(bucket) -> tuple | dict:
    return (bucket,) if type(bucket) is str else bucket


class ObjectIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        if hasattr(self, "_held"):
            discard(self._held, self._fields)
        self._seq = itertools.count()
        # (provider, kind) -> id -> (creation order, *values_of(object)): no tuple key per object
        self._held: dict[tuple[str, str], dict[str, tuple]] = {}
        # (group, field) -> value -> ids in the order objects took that value; an id alone while
        # only one object holds the value (most references)
        self._fields: dict[tuple[Group, str], dict[str, str | dict[str, None]]] = {}
        self._cards: set[tuple[str, str, str]] = set()          # (provider, tenant, id) of stored cards

    def load(self, store) -> None:
        """Index what the store already holds (objects read from a state file)."""
        for provider, tenant, kind, _ in store.groups():
            for oid, obj in store.items(provider, kind, tenant):
                self.observe(provider, kind, oid, tenant, obj)

    def observe(self, provider, kind, id, tenant, obj) -> None:
        """Store hook (see MemoryStore.observers)."""
        with self._lock:
            if provider is None:
                self._clear()
                return
            group = (provider, tenant, kind)
            held = self._held.setdefault((provider, kind), {})
            old = held.pop(id, None)
            if obj is None:
                self._cards.discard((provider, tenant, id))
                new = None
            else:
                if tl.card_like(obj):
                    self._cards.add((provider, tenant, id))
                new = held[id] = (old[0] if old else next(self._seq),
                                  *values_of(obj, id, lambda v: (provider, tenant, v) in self._cards))
                if new == old:
                    held[id] = old   # its strings are the ones the buckets already hold
                    return
            for field, before, after in zip(FIELDS, _fields(old), _fields(new)):
                if before == after:
                    continue
                values = self._fields.setdefault((group, field), {})
                for value in before:
                    bucket = values.get(value)
                    if type(bucket) is dict:
                        bucket.pop(id, None)
                        if not bucket:
                            del values[value]
                    elif bucket == id:
                        del values[value]
                for value in after:
                    bucket = values.setdefault(value, id)
                    if type(bucket) is dict:
                        bucket[id] = None
                    elif bucket != id:
                        values[value] = {bucket: None, id: None}

    # -- queries -----------------------------------------------------------------------------
    def _newest_first(self, group: Group, ids) -> list[str]:
        provider, _, kind = group
        held = self._held.get((provider, kind), {})
        return sorted(ids, key=lambda i: held.get(i, (-1,))[0], reverse=True)

    def matching(self, group: Group, status: str | None, reference: str | None):
        """(count, page(skip, n) -> ids newest first) of objects with that status and a reference
        containing ``reference``. Pages read the live buckets: nothing is copied per query."""
        with self._lock:
            by_status = _ids(self._fields.get((group, "status"), {}).get(status.lower(), {})) if status else None
            if reference:
                needle = reference.lower()
                # reference values keep the order objects took them, newest last: no sort needed
                hits = [_ids(b) for value, b in self._fields.get((group, "reference"), {}).items() if needle in value]
                count = (sum(map(len, hits)) if by_status is None
                         else sum(1 for b in hits for i in b if i in by_status))
            else:
                hits, count = [by_status], len(by_status)
                by_status = None

        def page(skip: int, n: int) -> list[str]:
            with self._lock:
                newest = (i for b in reversed(hits) for i in reversed(b) if by_status is None or i in by_status)
                return list(islice(newest, skip, skip + n))
        return count, page

    def related(self, group: Group, fingerprint: str | None, link: str | None) -> list[str]:
        """Ids in ``group`` carrying that card fingerprint or pointing at that stored card, oldest first."""
        with self._lock:
            ids = {}
            if fingerprint:
                ids.update(dict.fromkeys(_ids(self._fields.get((group, "fingerprint"), {}).get(fingerprint, {}))))
            if link:
                ids.update(dict.fromkeys(_ids(self._fields.get((group, "link"), {}).get(link, {}))))
            return self._newest_first(group, ids)[::-1]
