"""Status history of stored objects, for timelines and state diagrams.

Objects keep only their current status, so the history watches every ``store.put`` and records a
transition whenever the status an object is stored with differs from the one it was last stored
with. It reads a generic status field, so it knows no provider. Each transition remembers its
place among the journal's entries (``position``: the sequence number of the request it follows),
so a timeline can order it against requests even while the virtual clock stands still. A request
reaches the journal only after its handler ran, so the web layer supplies a ``position`` that
counts the request in flight.

Kept in memory only, bounded per object.
"""
from __future__ import annotations

import marshal
import threading
from datetime import timedelta
from typing import Callable

from .clock import EPOCH, MICROSECOND, iso_z
from .store import discard

# an internal state, where a provider keeps one apart from the status it shows, says more
STATUS_FIELDS = ("_state", "status", "state")
PER_OBJECT = 100


def status_of(obj: dict) -> str | None:
    for name in STATUS_FIELDS:
        value = obj.get(name)
        if isinstance(value, str):
            return value
    return None


class History:
    def __init__(self, clock, position: Callable[[], int] = lambda: 0) -> None:
        self.clock = clock
        self.position = position
        self._lock = threading.Lock()
        # (provider, kind) -> id -> (status now, then at, from, to, position of each move), marshalled:
        # bytes, so the map is no container the cyclic GC has to walk
        self._objects: dict[tuple[str, str], dict[str, bytes]] = {}

    def observe(self, provider: str | None, kind: str | None, id: str | None, tenant: str | None,
                obj: dict | None) -> None:
        """Store hook: every object written, deleted (obj None), or everything dropped (all None)."""
        with self._lock:
            if provider is None:
                discard(self._objects)
                self._objects = {}
                return
            group = self._objects.setdefault((provider, kind), {})
            if obj is None:
                group.pop(id, None)
                return
            status = status_of(obj)
            held = group.get(id)
            held = marshal.loads(held) if held is not None else None
            if held is not None and held[0] == status:
                return
            if status is None:
                group[id] = marshal.dumps((None, *held[1:]) if held else (None,))
                return
            moves = held[1:] if held is not None else ()
            if len(moves) >= PER_OBJECT * 4:
                moves = moves[4:]
            at = (self.clock.now(tenant) - EPOCH) // MICROSECOND
            group[id] = marshal.dumps((status, *moves, at, held and held[0], status, self.position()))

    def transitions(self, provider: str, kind: str, id: str) -> list[dict]:
        with self._lock:
            held = self._objects.get((provider, kind), {}).get(id)
        moves = marshal.loads(held)[1:] if held is not None else ()
        return [{"at": iso_z(EPOCH + timedelta(microseconds=moves[i]), 3), "from": moves[i + 1],
                 "to": moves[i + 2], "position": moves[i + 3]} for i in range(0, len(moves), 4)]
