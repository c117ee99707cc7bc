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

A run (``run_due``, and a whole ``advance``) takes the timers that existed when it began and what
its own work schedules: a timer the handlers it runs schedule, and a timer that replaces one it
took (a webhook's next attempt, scheduled by the thread that reads the answer). A timer another
thread schedules meanwhile (a request's new event, due at once) waits for the run to end and is
taken by the next one: under a steady stream of writes, each making a delivery due at once, a run
that also took those would never end, and an ``advance`` waited behind it.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from .clock import Clock, parse_instant
from .ids import IdFactory
from .state import NullState

log = logging.getLogger("simulator.timers")

_SPACE = "timers"
# a heap holding more cancelled entries than this (and than live ones) is rebuilt
_COMPACT_AT = 1024

LaneRunner = Callable[[list[list["Timer"]], Callable[["Timer"], None]], None]


class _Round:
    """What one run may take: timers up to ``last_seq``, and those its own work scheduled."""
    __slots__ = ("last_seq", "thread", "keys", "own", "deferred")

    def __init__(self, last_seq: int, thread: int) -> None:
        self.last_seq, self.thread = last_seq, thread
        self.keys: set[str] = set()     # keys of the timers it took
        self.own: set[int] = set()      # seqs of the timers its work scheduled since it began
        self.deferred: list[tuple[datetime, int, str]] = []   # heap entries of the others

    def takes(self, timer: "Timer") -> bool:
        return timer.seq <= self.last_seq or timer.seq in self.own


@dataclass(slots=True)
class Timer:
    due: datetime
    tenant: str
    name: str
    args: dict
    key: str
    seq: int


class Timers:
    def __init__(self, clock: Clock, state: NullState | None = None, ids: IdFactory | None = None) -> None:
        self.clock = clock
        self._ids = ids
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
        self._last_seq = top
        self._round: _Round | None = None   # the run under way, set and read under _lock

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
            seq = self._last_seq = next(self._seq)
            timer = Timer(due, tenant, name, dict(args or {}), key if key is not None else f"#{seq}", seq)
            run = self._round
            if run is not None and (timer.key in run.keys or threading.get_ident() == run.thread):
                run.own.add(seq)
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
        # caller holds the lock; dead entries (cancelled or replaced timers) are dropped here, lazily,
        # and the run under way sets aside the timers it does not take
        heap = self._heaps[tenant]
        run = self._round
        while heap and ((top := self._entry(heap[0])) is None or (run is not None and not run.takes(top))):
            entry = heapq.heappop(heap)
            if top is None:
                self._dead[tenant] = max(0, self._dead.get(tenant, 0) - 1)
            else:
                run.deferred.append(entry)
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
                    if self._round is not None:
                        self._round.keys.add(top.key)
                    due.append(top)
        due.sort(key=lambda timer: (timer.due - self.clock.offset(timer.tenant), timer.seq))
        return due

    def _run_one(self, timer: Timer) -> None:
        handler = self._handlers.get(timer.name)
        # what the handler changes and the timer's own row go in one transaction: after a kill
        # the timer has either run, with all its effects, or not at all
        # what it draws does not depend on what requests drew before it (see ids.streams_for); a
        # key is scheduled again only for a later instant, so the name is the run's alone
        draws = self._ids.streams_for(f"{timer.key}@{timer.due.isoformat()}") if self._ids else nullcontext()
        with self._state.together(), draws:
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

    @contextmanager
    def _run(self):
        """One run: the outermost of nested ones (an ``advance`` and its ``run_due``) sets the bound."""
        with self._run_lock:
            with self._lock:
                outer = self._round is None
                if outer:
                    self._round = _Round(self._last_seq, threading.get_ident())
            try:
                yield
            finally:
                if outer:
                    with self._lock:
                        run, self._round = self._round, None
                        for entry in run.deferred:
                            timer = self._entry(entry)
                            if timer is not None:
                                heapq.heappush(self._heaps.setdefault(timer.tenant, []), entry)

    def run_due(self, tenant: str | None = None) -> int:
        """Run every timer that is due now, oldest first; returns how many ran."""
        ran = 0
        with self._run():
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

    def moving(self):
        """Hold off every other run and move while the caller reads the clock and moves it: two
        moves worked out from one reading (``set`` to an instant, say) would both apply."""
        return self._run_lock

    def advance(self, delta: timedelta, tenant: str | None = None) -> None:
        """Move ``tenant``'s clock by ``delta``, running every timer at its own instant on the way.
        A reset of that clock meanwhile ends the move where the reset left the clock."""
        if delta < timedelta(0):
            self.clock.advance(delta, tenant)
            return
        with self._run():
            stamp = self.clock.stamp(tenant)
            self.run_due(tenant)
            remaining = delta
            while True:
                gap = self._next_gap(tenant)
                if gap is None or gap > remaining:
                    break
                gap = max(gap, timedelta(0))
                if not self.clock.advance(gap, tenant, since=stamp):
                    return
                remaining -= gap
                self.run_due(tenant)
            if self.clock.advance(remaining, tenant, since=stamp):
                self.run_due(tenant)

    def set(self, when: datetime, tenant: str | None = None) -> None:
        with self.moving():
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
            run = self._round
            if run is not None:   # what the run under way set aside goes too
                kept = []
                for entry in run.deferred:
                    timer = self._entry(entry)
                    if timer is not None and (tenant is None or timer.tenant == tenant):
                        del self._by_key[timer.key]
                    elif timer is not None:
                        kept.append(entry)
                run.deferred = kept
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
            ran = 0
            try:
                ran = self.timers.run_due()
            except Exception:
                # a pass that failed (a state file that refused a write, say) must not end the
                # thread: every timer after it, every webhook attempt among them, would wait for ever
                log.exception("running due timers failed")
            if not ran:
                # a pass that ran something may have left what requests scheduled meanwhile: the
                # next one follows at once, not when the next event wakes this thread
                self.timers.wait(self.interval)
            # under load every request schedules a delivery due now: waking for each one costs a
            # thread switch per event, waiting a moment takes the ones that follow in the same pass
            self._halt.wait(self.gather)

    def stop(self) -> None:
        self._halt.set()
