"""Timers on the virtual clock: webhook attempts, notification re-sends, expiries.

A timer is data — (due, tenant, handler name, JSON args, key) — so a state file can keep it and a
restarted process runs it at the virtual instant it was scheduled for. Handlers are registered by
name when the services that own them are built.

``advance`` walks the clock forward from one due instant to the next, running what is due at each,
so a retry schedule of 5m, 10m, 15m… is kept exactly even when a test jumps 30 days in one call.
Timers belong to a tenant because each tenant may have its own clock offset: every tenant has its
own heap, ordered by due time on that tenant's clock. Everything due at one instant runs before
the clock moves on. Most handlers run one timer at a time, in schedule order. A handler that waits
on the network (webhook attempts) is registered with ``lanes``: it gets every due timer of its
name at once, grouped by their ``lane`` argument (the events of one payment, say), and runs the
lanes side by side, each lane in schedule order, so a receiver sees one object's events in the
order they happened.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from .clock import Clock, parse_instant
from .state import NullState

log = logging.getLogger("simulator.timers")

_SPACE = "timers"
# a heap holding more cancelled entries than this (and than live ones) is rebuilt
_COMPACT_AT = 1024

LaneRunner = Callable[[list[list["Timer"]], Callable[["Timer"], None]], None]


@dataclass(slots=True)
class Timer:
    due: datetime
    tenant: str
    name: str
    args: dict
    key: str
    seq: int


class Timers:
    def __init__(self, clock: Clock, state: NullState | None = None) -> None:
        self.clock = clock
        self._state = state or NullState()
        self._lock = threading.Lock()
        self._run_lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._handlers: dict[str, Callable[..., None]] = {}
        self._lane_runners: dict[str, LaneRunner] = {}
        self._heaps: dict[str, list[tuple[datetime, int, Timer]]] = {}
        self._dead: dict[str, int] = {}
        self._by_key: dict[str, Timer] = {}
        self._taken: dict[str, Timer] = {}   # taken to run and not finished yet, by key
        top = 0
        for key, tenant, saved in self._state.rows(_SPACE):
            timer = Timer(parse_instant(saved["due"]), tenant, saved["name"], saved["args"], key, saved["seq"])
            self._push(timer)
            top = max(top, timer.seq)
        self._seq = itertools.count(top + 1)

    def register(self, name: str, fn: Callable[..., None] | None = None, *, lanes: LaneRunner | None = None) -> None:
        """``fn(tenant, **args)`` runs a timer called ``name``; or ``lanes(lanes, finished)`` runs all
        that are due together (a list of lanes, each a list of timers in schedule order) and calls
        ``finished(timer)`` as each one is done."""
        if lanes is not None:
            self._lane_runners[name] = lanes
        else:
            self._handlers[name] = fn

    # -- scheduling --------------------------------------------------------------------------
    def _push(self, timer: Timer) -> None:
        old = self._by_key.get(timer.key)
        self._by_key[timer.key] = timer
        if old is not None:
            self._drop(old)
        # the entry names its timer by key and seq, not by reference: a tuple of a datetime, an int
        # and a string is one the cyclic GC stops tracking, so a full collection walks each pending
        # timer once (the Timer itself), not twice
        heapq.heappush(self._heaps.setdefault(timer.tenant, []), (timer.due, timer.seq, timer.key))

    def _drop(self, timer: Timer) -> None:
        # the caller took it out of _by_key (or replaced it there): its heap entry is dead
        heap = self._heaps.get(timer.tenant)
        if heap is None:
            return
        dead = self._dead[timer.tenant] = self._dead.get(timer.tenant, 0) + 1
        if dead > _COMPACT_AT and dead * 2 > len(heap):
            heap[:] = [entry for entry in heap if self._entry(entry) is not None]
            heapq.heapify(heap)
            self._dead[timer.tenant] = 0

    def at(self, due: datetime, tenant: str, name: str, args: dict | None = None, key: str | None = None) -> Timer:
        """Schedule handler ``name``; a new timer with the same ``key`` replaces the old one."""
        with self._lock:
            seq = next(self._seq)
            timer = Timer(due, tenant, name, dict(args or {}), key if key is not None else f"#{seq}", seq)
            self._push(timer)
            if self._state.persistent:
                self._state.put(_SPACE, timer.key, {"due": due.isoformat(), "name": name, "args": timer.args,
                                                    "seq": seq}, tenant)
            if due <= self.clock.now(tenant):
                # only a timer due now needs the dispatcher before its next poll; waking it for a
                # later one costs a thread switch per request and finds nothing to run
                self._wake.notify_all()
        return timer

    def cancel(self, key: str) -> None:
        with self._lock:
            timer = self._by_key.pop(key, None)
            if timer is not None:
                self._drop(timer)
                self._state.delete(_SPACE, key)

    def pending(self, tenant: str | None = None) -> list[Timer]:
        with self._lock:
            return [t for t in self._by_key.values() if tenant is None or t.tenant == tenant]

    # -- running -----------------------------------------------------------------------------
    def _entry(self, entry: tuple[datetime, int, str]) -> Timer | None:
        """The timer a heap entry stands for; None once it was cancelled, replaced or taken."""
        timer = self._by_key.get(entry[2])
        return timer if timer is not None and timer.seq == entry[1] else None

    def _top(self, tenant: str) -> Timer | None:
        # caller holds the lock; dead entries (cancelled or replaced timers) are dropped here, lazily
        heap = self._heaps[tenant]
        while heap and (top := self._entry(heap[0])) is None:
            heapq.heappop(heap)
            self._dead[tenant] = max(0, self._dead.get(tenant, 0) - 1)
        if not heap:
            del self._heaps[tenant]
            self._dead.pop(tenant, None)
            return None
        return top

    def _tenants(self, tenant: str | None) -> list[str]:
        if tenant is None:
            return list(self._heaps)
        return [tenant] if tenant in self._heaps else []

    def _take_due(self, tenant: str | None) -> list[Timer]:
        """Every timer due now, in schedule order, taken off the heaps (still saved until run)."""
        due = []
        with self._lock:
            for t in self._tenants(tenant):
                now = self.clock.now(t)
                while (top := self._top(t)) is not None and top.due <= now:
                    heapq.heappop(self._heaps[t])
                    del self._by_key[top.key]   # nothing else may run it
                    self._taken[top.key] = top
                    due.append(top)
        due.sort(key=lambda timer: (timer.due - self.clock.offset(timer.tenant), timer.seq))
        return due

    def _run_one(self, timer: Timer) -> None:
        handler = self._handlers.get(timer.name)
        # what the handler changes and the timer's own row go in one transaction: after a kill
        # the timer has either run, with all its effects, or not at all
        with self._state.together():
            try:
                if handler is None:
                    log.warning("no handler for timer %s (%s); dropped", timer.key, timer.name)
                else:
                    handler(timer.tenant, **timer.args)
            except Exception:  # a broken timer must not stop the others
                log.exception("timer %s failed", timer.key)
            self._finished(timer)

    def _finished(self, timer: Timer) -> None:
        with self._lock:
            if self._taken.get(timer.key) is not timer:
                # a reset dropped it while it ran: the key's row, if any, is a newer timer's
                return
            del self._taken[timer.key]
            # the handler may have scheduled the same key again: that row is the live one
            if timer.key not in self._by_key:
                self._state.delete(_SPACE, timer.key)

    def run_due(self, tenant: str | None = None) -> int:
        """Run every timer that is due now, oldest first; returns how many ran."""
        ran = 0
        with self._run_lock:
            while batch := self._take_due(tenant):
                ran += len(batch)
                laned: dict[str, dict[str, list[Timer]]] = {}
                for timer in batch:
                    if timer.name in self._lane_runners:
                        laned.setdefault(timer.name, {}).setdefault(timer.args.get("lane", timer.key), []).append(timer)
                    else:
                        self._run_one(timer)
                # the clock may not move past this instant before every result is recorded
                for name, lanes in laned.items():
                    try:
                        self._lane_runners[name](list(lanes.values()), self._finished)
                    except Exception:
                        log.exception("timers %s failed", name)
        return ran

    def _next_gap(self, tenant: str | None) -> timedelta | None:
        with self._lock:
            gaps = [top.due - self.clock.now(t) for t in self._tenants(tenant)
                    if (top := self._top(t)) is not None]
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
            for t in self._tenants(tenant):
                for entry in self._heaps.pop(t):
                    timer = self._entry(entry)
                    if timer is not None:
                        del self._by_key[timer.key]
                self._dead.pop(t, None)
            for key in [k for k, timer in self._taken.items() if tenant is None or timer.tenant == tenant]:
                del self._taken[key]
            self._state.clear(_SPACE, tenant)


class Dispatcher(threading.Thread):
    """Background runner for ``webhooks: auto``: runs whatever falls due, a few times a second."""

    def __init__(self, timers: Timers, interval: float = 0.05, gather: float = 0.005) -> None:
        super().__init__(name="sandbox-dispatcher", daemon=True)
        self.timers = timers
        self.interval = interval
        self.gather = gather
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.timers.run_due()
            except Exception:
                # a pass that failed (a state file that refused a write, say) must not end the
                # thread: every timer after it, every webhook attempt among them, would wait for ever
                log.exception("running due timers failed")
            self.timers.wait(self.interval)
            # under load every request schedules a delivery due now: waking for each one costs a
            # thread switch per event, waiting a moment takes the ones that follow in the same pass
            self._halt.wait(self.gather)

    def stop(self) -> None:
        self._halt.set()
