"""Secondary indexes over the store for the dashboard, kept current by a store observer.

With 100k objects stored, a scan costs more than a page may take, so the fields the dashboard
filters on (status, reference) and the ones a recurring series is found by (card fingerprint,
link to a stored card) are indexed per (provider, tenant, kind) as objects are written. A write
pays a few dictionary operations; a page costs about its own length (and its offset). Every
object is numbered when first written, across all listings: a page of several listings is merged
by that number, newest first. Within one status, objects are listed by when they entered it; a
reference search by when objects took their references.
"""
from __future__ import annotations

import heapq
import itertools
import marshal
import threading
from itertools import islice
from typing import Iterator

from ..core.store import discard
from . import timeline as tl

Group = tuple[str, str, str]   # provider, tenant, kind


# alias: the object's own ``id`` where it is stored under another key (a payment kept under its
# request's id), so that a page asked for by the id the API shows still finds it
FIELDS = ("status", "reference", "fingerprint", "alias", "link")
NONE = ((), (), (), (), ())


def values_of(obj: dict, own_id: str, cards: dict) -> tuple:
    """(status, reference, fingerprint, alias, *links): what ``obj`` holds for each of FIELDS, None
    for nothing; an object may point at several stored cards (links: the ids among ``cards``)."""
    status = tl.wire_status(obj)
    reference = tl.reference_of(obj)
    if reference is not None:
        reference = str(reference)
        lower = reference.lower()
        reference = reference if lower == reference else lower   # the object's own string, when it can
    fingerprint = tl.fingerprint_of(obj)
    alias = obj.get("id")
    alias = alias if alias.__class__ is str and alias != own_id else None
    # every save of every object walks its values here: a type test and a lookup per value
    links = [v for v in obj.values() if v.__class__ is str and v in cards and v != own_id] if cards else ()
    return (status.lower() if status else None, reference, fingerprint, alias, *links)


def _fields(held: tuple | None) -> tuple[tuple, ...]:
    """A held record (creation number, values_of...) as one tuple of values per field."""
    if held is None:
        return NONE
    return (*(() if v is None else (v,) for v in held[1:5]), held[5:])


SHARED = "\0"   # in _fields: several objects hold the value, their ids are in _shared


class ObjectIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        if hasattr(self, "_held"):
            discard(self._held, self._fields, self._shared)
        self._seq = itertools.count()
        # group -> id -> (creation number, *values_of(object)), marshalled: bytes in a map of strings,
        # which the cyclic GC does not track. Ids stay where they were first written: each map is in
        # creation order, which the listing walks from its end
        self._held: dict[Group, dict[str, bytes]] = {}
        # (group, field) -> value -> the id of the one object holding it (most references), or SHARED;
        # values in the order objects took them. Ids of a shared value, in the order objects took it,
        # live in a map of their own: a dict value would make the GC track and walk the big map.
        self._fields: dict[tuple[Group, str], dict[str, str]] = {}
        self._shared: dict[tuple[Group, str], dict[str, dict[str, None]]] = {}
        self._cards: dict[tuple[str, str], dict[str, None]] = {}   # (provider, tenant) -> ids of stored cards

    def load(self, store) -> None:
        """Index what a fresh store already holds (objects read from a state file), numbered in the
        order their creation times give: the store hands them over one listing after another."""
        walked = []
        for provider, tenant, kind, _ in store.groups():
            group = (provider, tenant, kind)
            for oid, obj in store.items(provider, kind, tenant):
                self.observe(provider, kind, oid, tenant, obj)
                when = tl.created_of(obj)
                walked.append((when.timestamp() if when else float("-inf"), len(walked), group, oid))
        with self._lock:
            renumbered: dict[Group, dict[str, bytes]] = {}
            for n, (_, _, group, oid) in enumerate(sorted(walked)):
                renumbered.setdefault(group, {})[oid] = marshal.dumps((n, *marshal.loads(self._held[group][oid])[1:]))
            self._held = renumbered
            self._seq = itertools.count(len(walked))

    def observe(self, provider, kind, id, tenant, obj) -> None:
        """Store hook (see MemoryStore.observers)."""
        with self._lock:
            if provider is None:
                self._clear()
                return
            group = (provider, tenant, kind)
            held = self._held.setdefault(group, {})
            old = held.pop(id, None) if obj is None else held.get(id)
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
    def _number(self, group: Group, id: str) -> int:
        raw = self._held.get(group, {}).get(id)
        return marshal.loads(raw)[0] if raw is not None else -1

    def _newest_first(self, group: Group, ids) -> list[str]:
        return sorted(ids, key=lambda i: self._number(group, i), reverse=True)

    def _matching(self, group: Group, status: str | None, reference: str | None) -> tuple[int, Iterator[str]]:
        """(count, ids newest first) of objects with that status and a reference containing
        ``reference``; the ids are read lazily from the live buckets, so only under the lock."""
        if not (status or reference):
            held = self._held.get(group, {})
            return len(held), reversed(held)
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
        return count, (i for b in reversed(hits) for i in reversed(b) if by_status is None or i in by_status)

    def matching(self, group: Group, status: str | None, reference: str | None):
        """(count, page(skip, n) -> ids newest first) of one listing's objects with that status and
        a reference containing ``reference``. Pages read the live buckets: nothing is copied per query."""
        with self._lock:
            count, _ = self._matching(group, status, reference)

        def page(skip: int, n: int) -> list[str]:
            with self._lock:
                return list(islice(self._matching(group, status, reference)[1], skip, skip + n))
        return count, page

    def newest(self, groups, status: str | None, reference: str | None, offset: int,
               limit: int) -> tuple[int, list[tuple[Group, str]]]:
        """(count, one page of (group, id)) of the objects of several listings, newest first (those
        filtered by status or reference within each listing as ``matching`` orders them), merged by
        creation number: the page costs its length and offset, whatever the listings hold."""
        with self._lock:
            total, streams = 0, []
            for group in groups:
                count, ids = self._matching(group, status, reference)
                total += count
                streams.append(self._numbered(group, ids))
            return total, [(group, id) for _, id, group in islice(heapq.merge(*streams), offset, offset + limit)]

    def _numbered(self, group: Group, ids: Iterator[str]) -> Iterator[tuple[int, str, Group]]:
        # newest first is the highest number first: merged ascending by its negative
        held = self._held.get(group, {})
        return ((-marshal.loads(held[i])[0], i, group) for i in ids)

    def key_of(self, provider: str, kind: str, alias: str) -> str | None:
        """The id an object of that kind is stored under, found by the ``id`` it carries where that
        differs (see FIELDS); None if no object carries it."""
        with self._lock:
            for group in self._held:
                if group[0] == provider and group[2] == kind:
                    found = self._bucket((group, "alias"), alias)
                    if found:
                        return next(iter(found))
        return None

    def related(self, group: Group, fingerprint: str | None, link: str | None) -> list[str]:
        """Ids in ``group`` carrying that card fingerprint or pointing at that stored card, oldest first."""
        with self._lock:
            ids = {}
            if fingerprint:
                ids.update(dict.fromkeys(self._bucket((group, "fingerprint"), fingerprint)))
            if link:
                ids.update(dict.fromkeys(self._bucket((group, "link"), link)))
            return self._newest_first(group, ids)[::-1]
