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
import threading
from itertools import islice

from ..core.store import discard
from . import timeline as tl

Group = tuple[str, str, str]   # provider, tenant, kind


FIELDS = ("status", "reference", "fingerprint", "link")
NONE = ((), (), (), ())


def values_of(obj: dict, own_id: str, is_card) -> tuple[tuple, ...]:
    """What each of FIELDS holds for ``obj`` (a tuple each: a field may hold several values)."""
    status = tl.wire_status(obj)
    reference = tl.reference_of(obj)
    fingerprint = tl.fingerprint_of(obj)
    return ((status.lower(),) if status else (),
            (str(reference).lower(),) if reference is not None else (),
            (fingerprint,) if fingerprint else (),
            tuple(v for v in obj.values() if isinstance(v, str) and v != own_id and is_card(v)))


class ObjectIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        if hasattr(self, "_held"):
            discard(self._order, self._held, self._fields)
        self._seq = itertools.count()
        self._order: dict[tuple[str, str, str], int] = {}       # (provider, kind, id) -> creation order
        self._held: dict[tuple[str, str, str], tuple] = {}      # key -> values_of(object)
        # (group, field) -> value -> ids, each bucket in the order objects took that value
        self._fields: dict[tuple[Group, str], dict[str, dict[str, None]]] = {}
        self._cards: set[tuple[str, str, str]] = set()          # (provider, tenant, id) of stored cards

    def load(self, store) -> None:
        """Index what the store already holds (objects read from a state file)."""
        for provider, tenant, kind, _ in store.groups():
            for obj in store.list(provider, kind, tenant):
                oid = tl.id_of(store, provider, kind, obj)
                if oid is not None:
                    self.observe(provider, kind, oid, tenant, obj)

    def observe(self, provider, kind, id, tenant, obj) -> None:
        """Store hook (see MemoryStore.observers)."""
        with self._lock:
            if provider is None:
                self._clear()
                return
            key = (provider, kind, id)
            group = (provider, tenant, kind)
            old = self._held.pop(key, NONE)
            if obj is None:
                self._order.pop(key, None)
                self._cards.discard((provider, tenant, id))
                new = NONE
            else:
                self._order.setdefault(key, next(self._seq))
                if tl.card_like(obj):
                    self._cards.add((provider, tenant, id))
                new = values_of(obj, id, lambda v: (provider, tenant, v) in self._cards)
                self._held[key] = new
            for field, before, after in zip(FIELDS, old, new):
                if before == after:
                    continue
                values = self._fields.setdefault((group, field), {})
                for value in before:
                    bucket = values.get(value)
                    if bucket is not None:
                        bucket.pop(id, None)
                        if not bucket:
                            del values[value]
                for value in after:
                    values.setdefault(value, {})[id] = None

    # -- queries -----------------------------------------------------------------------------
    def _newest_first(self, group: Group, ids) -> list[str]:
        provider, _, kind = group
        return sorted(ids, key=lambda i: self._order.get((provider, kind, i), -1), reverse=True)

    def matching(self, group: Group, status: str | None, reference: str | None):
        """(count, page(skip, n) -> ids newest first) of objects with that status and a reference
        containing ``reference``. Pages read the live buckets: nothing is copied per query."""
        with self._lock:
            by_status = self._fields.get((group, "status"), {}).get(status.lower(), {}) if status else None
            if reference:
                needle = reference.lower()
                # reference values keep the order objects took them, newest last: no sort needed
                hits = [b for value, b in self._fields.get((group, "reference"), {}).items() if needle in value]
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
                ids.update(self._fields.get((group, "fingerprint"), {}).get(fingerprint, {}))
            if link:
                ids.update(self._fields.get((group, "link"), {}).get(link, {}))
            return self._newest_first(group, ids)[::-1]
