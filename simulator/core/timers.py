"""Timers on the virtual clock: webhook attempts, notification re-sends, expiries.

``advance`` walks the clock forward from one due timer to the next, running each at its own
instant, so a retry schedule of 5m, 10m, 15m… is kept exactly even when a test jumps 30 days in
one call. Timers belong to a tenant because each tenant may have its own clock offset.
"""
from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from .clock import Clock

log = logging.getLogger("simulator.timers")


@dataclass
class Timer:
    due: datetime
    tenant: str
    callback: Callable[[], None]
    key: str | None = None
    seq: int = 0
    cancelled: bool = field(default=False)


class Timers:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._run_lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._timers: dict[int, Timer] = {}
        self._by_key: dict[str, int] = {}
        self._seq = itertools.count(1)

    def at(self, due: datetime, tenant: str, callback: Callable[[], None], key: str | None = None) -> Timer:
        """Schedule ``callback``; a new timer with the same ``key`` replaces the old one."""
        with self._lock:
            if key is not None and key in self._by_key:
                old = self._timers.pop(self._by_key.pop(key), None)
                if old:
                    old.cancelled = True
            timer = Timer(due=due, tenant=tenant, callback=callback, key=key, seq=next(self._seq))
            self._timers[timer.seq] = timer
            if key is not None:
                self._by_key[key] = timer.seq
            self._wake.notify_all()
        return timer

    def cancel(self, key: str) -> None:
        with self._lock:
            seq = self._by_key.pop(key, None)
            timer = self._timers.pop(seq, None) if seq is not None else None
            if timer:
                timer.cancelled = True

    def pending(self, tenant: str | None = None) -> list[Timer]:
        with self._lock:
            return [t for t in self._timers.values() if tenant is None or t.tenant == tenant]

    def _pop_next_due(self, tenant: str | None) -> Timer | None:
        with self._lock:
            best = None
            for t in self._timers.values():
                if tenant is not None and t.tenant != tenant:
                    continue
                if t.due <= self.clock.now(t.tenant) and (best is None or (t.due, t.seq) < (best.due, best.seq)):
                    best = t
            if best is not None:
                del self._timers[best.seq]
                if best.key is not None and self._by_key.get(best.key) == best.seq:
                    del self._by_key[best.key]
            return best

    def run_due(self, tenant: str | None = None) -> int:
        """Run every timer that is due now, oldest first; returns how many ran."""
        ran = 0
        with self._run_lock:
            while (timer := self._pop_next_due(tenant)) is not None:
                ran += 1
                try:
                    timer.callback()
                except Exception:  # a broken timer must not stop the others
                    log.exception("timer %s failed", timer.key or timer.seq)
        return ran

    def _next_gap(self, tenant: str | None) -> timedelta | None:
        with self._lock:
            gaps = [t.due - self.clock.now(t.tenant) for t in self._timers.values()
                    if tenant is None or t.tenant == tenant]
        return min(gaps) if gaps else None

    def advance(self, delta: timedelta, tenant: str | None = None) -> None:
        if delta < timedelta(0):
            self.clock.advance(delta, tenant)
            return
        with self._run_lock:
            self.run_due(tenant)
            remaining = delta
            while True:
                gap = self._next_gap(tenant)
                if gap is None or gap > remaining:
                    break
                gap = max(gap, timedelta(0))
                self.clock.advance(gap, tenant)
                remaining -= gap
                self.run_due(tenant)
            self.clock.advance(remaining, tenant)
            self.run_due(tenant)

    def set(self, when: datetime, tenant: str | None = None) -> None:
        self.advance(when - self.clock.now(tenant), tenant)

    def wait(self, timeout: float) -> None:
        with self._lock:
            self._wake.wait(timeout)

    def reset(self, tenant: str | None = None) -> None:
        with self._lock:
            for seq, t in list(self._timers.items()):
                if tenant is None or t.tenant == tenant:
                    t.cancelled = True
                    del self._timers[seq]
                    if t.key is not None:
                        self._by_key.pop(t.key, None)


class Dispatcher(threading.Thread):
    """Background runner for ``webhooks: auto``: runs whatever falls due, a few times a second."""

    def __init__(self, timers: Timers, interval: float = 0.05) -> None:
        super().__init__(name="sandbox-dispatcher", daemon=True)
        self.timers = timers
        self.interval = interval
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.timers.run_due()
            self.timers.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
