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
import marshal
import threading
from itertools import islice

from ..core.store import discard
from . import timeline as tl

Group = tuple[str, str, str]   # provider, tenant, kind


FIELDS = ("status", "reference", "fingerprint", "link")
NONE = ((), (), (), ())


def values_of(obj: dict, own_id: str, cards: dict) -> tuple:
    """(status, reference, fingerprint, *links): what ``obj`` holds for each of FIELDS, None for
    nothing; an object may point at several stored cards (links: the ids among ``cards``)."""
    status = tl.wire_status(obj)
    reference = tl.reference_of(obj)
    if reference is not None:
        reference = str(reference)
        lower = reference.lower()
        reference = reference if lower == reference else lower   # the object's own string, when it can
    fingerprint = tl.fingerprint_of(obj)
    # every save of every object walks its values here: a type test and a lookup per value
    links = [v for v in obj.values() if v.__class__ is str and v in cards and v != own_id] if cards else ()
    return (status.lower() if status else None, reference, fingerprint, *links)


def _fields(held: tuple | None) -> tuple[tuple, ...]:
    """A held record (creation number, values_of...) as one tuple of values per field."""
    if held is None:
        return NONE
    return (*(() if v is None else (v,) for v in held[1:4]), held[4:])


SHARED = "\0"   # in _fields: several objects hold the value, their ids are in _shared


class ObjectIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        if hasattr(self, "_held"):
            discard(self._held, self._fields, self._shared)
        self._seq = itertools.count()
        # (provider, kind) -> id -> (creation order, *values_of(object)), marshalled: bytes in a map
        # of strings, which the cyclic GC does not track
        self._held: dict[tuple[str, str], dict[str, bytes]] = {}
        # (group, field) -> value -> the id of the one object holding it (most references), or SHARED;
        # values in the order objects took them. Ids of a shared value, in the order objects took it,
        # live in a map of their own: a dict value would make the GC track and walk the big map.
        self._fields: dict[tuple[Group, str], dict[str, str]] = {}
        self._shared: dict[tuple[Group, str], dict[str, dict[str, None]]] = {}
        self._cards: dict[tuple[str, str], dict[str, None]] = {}   # (provider, tenant) -> ids of stored cards

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
            old = marshal.loads(old) if old is not None else None
            cards = self._cards.setdefault((provider, tenant), {})
            if obj is None:
                cards.pop(id, None)
                new = None
            else:
                if tl.card_like(obj):
                    cards[id] = None
                new = (old[0] if old else next(self._seq), *values_of(obj, id, cards))
                held[id] = marshal.dumps(new)
                if new == old:
                    return
            for field, before, after in zip(FIELDS, _fields(old), _fields(new)):
                if before == after:
                    continue
                values = self._fields.setdefault((group, field), {})
                shared = self._shared.setdefault((group, field), {})
                for value in before:
                    holder = values.get(value)
                    if holder == SHARED:
                        shared[value].pop(id, None)
                        if not shared[value]:
                            del shared[value], values[value]
                    elif holder == id:
                        del values[value]
                for value in after:
                    holder = values.setdefault(value, id)
                    if holder == SHARED:
                        shared[value][id] = None
                    elif holder != id:
                        values[value] = SHARED
                        shared[value] = {holder: None, id: None}

    def _bucket(self, key: tuple[Group, str], value: str, holder: str | None = None) -> tuple | dict:
        """Ids holding ``value``, in the order they took it."""
        holder = holder or self._fields.get(key, {}).get(value)
        return self._shared[key][value] if holder == SHARED else (holder,) if holder else ()

    # -- queries -----------------------------------------------------------------------------
    def _newest_first(self, group: Group, ids) -> list[str]:
        provider, _, kind = group
        held = self._held.get((provider, kind), {})
        return sorted(ids, key=lambda i: marshal.loads(held[i])[0] if i in held else -1, reverse=True)

    def matching(self, group: Group, status: str | None, reference: str | None):
        """(count, page(skip, n) -> ids newest first) of objects with that status and a reference
        containing ``reference``. Pages read the live buckets: nothing is copied per query."""
        with self._lock:
            by_status = self._bucket((group, "status"), status.lower()) if status else None
            if reference:
                needle = reference.lower()
                # reference values keep the order objects took them, newest last: no sort needed
                hits = [self._bucket((group, "reference"), value, holder)
                        for value, holder in self._fields.get((group, "reference"), {}).items() if needle in value]
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
                ids.update(dict.fromkeys(self._bucket((group, "fingerprint"), fingerprint)))
            if link:
                ids.update(dict.fromkeys(self._bucket((group, "link"), link)))
            return self._newest_first(group, ids)[::-1]
