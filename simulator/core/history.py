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

import threading
from typing import Callable

from .clock import iso_z
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
        self._last: dict[tuple[str, str, str], str | None] = {}
        self._moves: dict[tuple[str, str, str], list[tuple]] = {}   # (at, from, to, position)

    def observe(self, provider: str | None, kind: str | None, id: str | None, tenant: str | None,
                obj: dict | None) -> None:
        """Store hook: every object written, deleted (obj None), or everything dropped (all None)."""
        key = (provider, kind, id)
        with self._lock:
            if obj is None:
                self._forget(None if provider is None else key)
                return
            status = status_of(obj)
            first = key not in self._last
            previous = self._last.get(key)
            if not first and previous == status:
                return
            self._last[key] = status
            if status is None:
                return
            moves = self._moves.setdefault(key, [])
            moves.append((iso_z(self.clock.now(tenant), 3), previous, status, self.position()))
            if len(moves) > PER_OBJECT:
                del moves[0]

    def transitions(self, provider: str, kind: str, id: str) -> list[dict]:
        with self._lock:
            return [{"at": at, "from": before, "to": after, "position": position}
                    for at, before, after, position in self._moves.get((provider, kind, id), ())]

    def _forget(self, key) -> None:
        if key is None:
            discard(self._last, self._moves)
            self._last, self._moves = {}, {}
        else:
            self._last.pop(key, None)
            self._moves.pop(key, None)
