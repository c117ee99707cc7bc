"""Webhook outbox: enqueue, sign per attempt, retry on the provider's schedule, keep every attempt.

A provider enqueues a payload and its schedule; the outbox owns delivery. Deliveries are data (a
state file keeps them); the signer is not, so it is asked of the provider at each attempt. Statuses:
``pending`` (not attempted yet), ``delivered``, ``failed`` (last attempt failed, retry scheduled),
``dead`` (schedule exhausted, or dropped by a scenario). Some providers re-send until the merchant
acknowledges in another way (until a notification is marked read, say): those enqueue with
``settle_on_success=False`` and call ``settle`` themselves.

An accepted event is never dropped. Memory is bounded by evicting settled deliveries (no attempt
left), oldest first; unsettled ones are only capped, and a write that would add an event beyond
the cap is refused before it does anything (``full``). A request thread only enqueues: attempts are
timers. The outbox builds and signs each request and records its answer; the ``sender`` puts it on
the wire (from a child process, on kept-alive connections, with a per-attempt timeout).
"""
from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
from datetime import datetime, timedelta
from typing import Callable, Optional
from urllib.parse import urlsplit

from . import effects as effects_mod
from .clock import Clock, iso_z, parse_duration
from .ids import IdFactory
from .memo import Memo
from .sender import CLOSED, Sender
from .state import NullState
from .store import public
from .timers import Timer, Timers

log = logging.getLogger("simulator.webhooks")

Signer = Callable[[bytes, dict, datetime], dict]
SignerFor = Callable[[str, str], Optional[Signer]]   # (provider, tenant) -> signer

_SPACE = "deliveries"
# a receiver's URL -> (scheme, host, port, path), or the text of why no request can be made to it
_targets = Memo(256)


def exponential_schedule(first: timedelta, cap: timedelta, within: timedelta) -> list[timedelta]:
    """Delays that start at ``first``, double up to ``cap``, and all fit in ``within``."""
    delays, total, step = [], timedelta(0), first
    while total + step <= within:
        delays.append(step)
        total += step
        step = min(step * 2, cap)
    return delays


class Outbox:
    def __init__(self, clock: Clock, timers: Timers, ids: IdFactory, *, signer_for: SignerFor,
                 state: NullState | None = None, timeout: float = 5.0, limit: int = 5000,
                 max_pending: int = 100_000, sender: Sender | None = None) -> None:
        self.clock = clock
        self.timers = timers
        self.ids = ids
        self.timeout = timeout
        self.limit = limit              # settled deliveries kept for reading
        self.max_pending = max_pending  # unsettled deliveries accepted at most
        self._signer_for = signer_for
        self._state = state or NullState()
        self._lock = threading.RLock()
        self._deliveries: dict[str, dict] = {}
        # settled deliveries (nothing left to attempt) by creation order: the oldest goes first
        self._evictable: list[tuple[int, str]] = []
        self._schedules: dict[tuple[timedelta, ...], tuple[float, ...]] = {}   # see _seconds
        self.sender = sender or Sender()
        # where a delivery was queued among the requests (see History.position), None if unknown:
        # set by the admin layer, which orders an object's timeline by it
        self.position: Callable[[], int | None] = lambda: None
        timers.register("webhook", lanes=self.attempt_lanes)
        for did, _, d in self._state.rows(_SPACE):
            # a position counts the requests of the run that queued it, whose journal is gone
            d.pop("_position", None)
            # JSON gave lists (and, from older files, a dict of headers): tuples, as enqueue makes them
            d["_headers"] = tuple(dict(d["_headers"]).items())
            for name in ("attempts", "rules", "_schedule"):
                d[name] = tuple(d[name])
            self._deliveries[did] = d
            if d["next_attempt_at"] is None:
                self._evictable.append((d["_seq"], did))
        heapq.heapify(self._evictable)
        self._seq = itertools.count(max((d["_seq"] for d in self._deliveries.values()), default=0) + 1)

    def full(self) -> bool:
        """Whether the cap on unsettled deliveries is reached: new events would have to be refused."""
        with self._lock:
            return len(self._deliveries) - len(self._evictable) >= self.max_pending

    # -- enqueue -----------------------------------------------------------------------------
    def enqueue(self, *, provider: str, tenant: str, event_type: str, url: str | None, body: bytes | str,
                schedule: list[timedelta], content_type: str = "application/json",
                headers: dict | None = None, settle_on_success: bool = True, subject: str | None = None,
                event_id: str | None = None) -> list[dict]:
        """Queue one event for delivery; returns the deliveries created (scenario may duplicate)."""
        if not url:
            return []
        fx = effects_mod.current()
        wh = fx.webhook or {}
        now = self.clock.now(tenant)
        created_at = iso_z(now, 3)
        seconds = self._seconds(schedule)
        copies = 1 + int(wh.get("duplicate", 0) or 0)
        created = []
        for _ in range(copies):
            # strings, numbers and tuples only: a full collection of the cyclic GC stops tracking a
            # dict that holds no list or dict, so a pending delivery costs it nothing to walk
            delivery = {
                "id": self.ids.uuid4(),
                "provider": provider,
                "tenant": tenant,
                "event_type": event_type,
                "event_id": event_id,
                "subject": subject,
                "url": url,
                "status": "pending",
                "attempts": (),
                "next_attempt_at": None,
                "created_at": created_at,
                "payload": body if isinstance(body, str) else body.decode("utf-8", "replace"),
                "content_type": content_type,
                "rules": tuple(fx.rules),
                "_headers": tuple((headers or {}).items()),
                "_schedule": seconds,
                "_settle_on_success": settle_on_success,
                "_inject_fail": int(wh.get("fail", 0) or 0),
                "_inject_status": int(wh.get("status", 500) or 500),
                "_bad_signature": bool(wh.get("bad_signature")),
                "_settled": False,
                "_seq": next(self._seq),
                "_position": self.position(),
            }
            with self._lock:
                self._deliveries[delivery["id"]] = delivery
                if wh.get("drop"):
                    delivery["status"] = "dead"
                    delivery["dropped"] = True
                elif isinstance(delay := wh.get("delay"), str):
                    self._schedule(delivery, now + parse_duration(delay))
                else:
                    self._schedule(delivery, now, created_at)
                self._save(delivery)
            created.append(delivery)
        return created

    def _seconds(self, schedule: list[timedelta]) -> tuple[float, ...]:
        """A retry schedule in seconds, as deliveries keep it: providers pass the same few."""
        key = tuple(schedule)
        seconds = self._schedules.get(key)
        if seconds is None:
            if len(self._schedules) >= 64:   # custom schedules are configuration: a few at most
                self._schedules.clear()
            seconds = self._schedules[key] = tuple(delay.total_seconds() for delay in schedule)
        return seconds

    def _schedule(self, delivery: dict, when: datetime, spelled: str | None = None) -> None:
        delivery["next_attempt_at"] = spelled or iso_z(when, 3)
        # one lane per subject: a receiver gets one object's events in the order they happened
        self.timers.at(when, delivery["tenant"], "webhook",
                       {"delivery_id": delivery["id"], "lane": delivery["subject"] or delivery["id"]},
                       key=f"webhook:{delivery['id']}")

    def _save(self, delivery: dict) -> None:
        """Write the delivery through; once nothing is left to attempt it may be evicted."""
        # caller holds the lock
        did = delivery["id"]
        self._state.put(_SPACE, did, delivery, delivery["tenant"])
        if delivery["next_attempt_at"] is None and not delivery.get("_evictable"):
            delivery["_evictable"] = True
            heapq.heappush(self._evictable, (delivery["_seq"], did))
            while len(self._evictable) > self.limit:
                _, old = heapq.heappop(self._evictable)
                del self._deliveries[old]
                self._state.delete(_SPACE, old)

    # -- delivery ----------------------------------------------------------------------------
    def _prepare(self, delivery_id: str) -> tuple | None:
        """An attempt's first half: (delivery, record, now, job), the job what goes on the wire (None
        for an injected failure, or a URL no request can be made to); None if nothing is left to
        attempt."""
        with self._lock:
            d = self._deliveries.get(delivery_id)
            if d is None or d["_settled"]:
                return None
            injected = d["_inject_fail"] > 0
            if injected:
                d["_inject_fail"] -= 1
        now = self.clock.now(d["tenant"])
        record = {"at": iso_z(now, 3), "status": None, "error": None}
        if injected:
            record["status"] = d["_inject_status"]
            record["injected"] = True
            return d, record, now, None
        body = d["payload"].encode()
        headers = {"Content-Type": d["content_type"]}
        headers.update(d["_headers"])
        signer = self._signer_for(d["provider"], d["tenant"])
        if signer is not None:
            signed_over = body + b"\x00tampered" if d["_bad_signature"] else body
            headers.update(signer(signed_over, d, now))
        target = _targets.get(d["url"]) or _targets.keep(d["url"], _target(d["url"]))
        if target.__class__ is str:
            record["error"] = target
            return d, record, now, None
        return d, record, now, (*target, body, headers, self.timeout)

    def _complete(self, d: dict, record: dict, now: datetime) -> dict:
        """An attempt's second half: keep its record, schedule the retry or settle."""
        ok = record["status"] is not None and 200 <= record["status"] < 300
        # the next attempt's timer and the delivery's record of this one: one transaction, or a
        # kill between them would leave a retry the delivery does not know of
        with self._state.together(), self._lock:
            # reset while the attempt was on the wire: the delivery is gone, and a delivery made
            # since may have its id (a reset restarts the id stream), which this one must not touch
            if self._deliveries.get(d["id"]) is not d:
                return record
            d["attempts"] = (*d["attempts"], record)
            n = len(d["attempts"])
            if ok:
                d["delivered"] = True
            if ok and d["_settle_on_success"]:
                d["status"], d["next_attempt_at"] = "delivered", None
            elif n <= len(d["_schedule"]) and not d["_settled"]:
                d["status"] = "delivered" if d.get("delivered") else "failed"
                self._schedule(d, now + timedelta(seconds=d["_schedule"][n - 1]))
            else:
                d["status"] = "delivered" if d.get("delivered") else "dead"
                d["next_attempt_at"] = None
            if d["next_attempt_at"] is None:
                # an attempt made by hand (a redelivery) leaves the retry it came before scheduled:
                # the delivery is done, and that retry would send the event once more
                self.timers.cancel(f"webhook:{d['id']}")
            self._save(d)
        return record

    def _record(self, timer: Timer, taken: tuple | None, finished: Callable[[Timer], None]) -> None:
        """An attempt's second half (``taken`` from ``_prepare``; None: nothing to record) and the
        end of its timer, in one transaction: after a kill, both happened or neither."""
        with self._state.together():
            try:
                if taken is not None:
                    self._complete(*taken[:3])
            except Exception:  # a broken attempt must not stop the others
                log.exception("webhook timer %s failed", timer.key)
            finished(timer)

    def attempt(self, delivery_id: str) -> dict | None:
        """One attempt, now, waiting for its answer."""
        taken = self._prepare(delivery_id)
        if taken is None:
            return None
        d, record, now, job = taken
        if job is not None:
            inbox: queue.SimpleQueue = queue.SimpleQueue()
            self.sender.submit([[job]], inbox)
            _, record["status"], record["error"] = inbox.get()
            if record["error"] == CLOSED:
                return None
        return self._complete(d, record, now)

    def attempt_lanes(self, lanes: list[list[Timer]], finished: Callable[[Timer], None]) -> None:
        """The attempts of due ``webhook`` timers: lanes side by side, each lane's in order (one
        object's events reach the receiver in the order they happened). ``finished(timer)`` as each
        attempt is recorded; returns once all are.

        Every attempt is prepared at once and each lane goes to the sender as one sequence: a batch
        costs one round trip however long its lanes are. Answers are recorded by the thread that
        reads them, so this thread wakes once, at the end, rather than once per answer."""
        wire: list[list[tuple]] = []
        taken_by_lane: list[list[tuple[Timer, tuple]]] = []
        for lane in lanes:
            jobs, taken_here = [], []
            for timer in lane:
                try:
                    taken = self._prepare(timer.args["delivery_id"])
                except Exception:  # a broken attempt must not stop the others
                    log.exception("webhook timer %s failed", timer.key)
                    taken = None
                if taken is not None and taken[3] is not None:
                    jobs.append(taken[3])
                    taken_here.append((timer, taken))
                else:
                    self._record(timer, taken, finished)
            if jobs:
                wire.append(jobs)
                taken_by_lane.append(taken_here)
        if wire:
            recorder = _Recorder(self, finished, sum(map(len, wire)))
            ids = self.sender.submit(wire, recorder)
            recorder.bind({jid: entry for lane_ids, entries in zip(ids, taken_by_lane)
                           for jid, entry in zip(lane_ids, entries)})
            recorder.done.wait()

    def settle(self, delivery_id: str) -> None:
        """Stop re-sending: the merchant acknowledged the event some other way."""
        with self._lock:
            d = self._deliveries.get(delivery_id)
            if d is None:
                return
            d["_settled"] = True
            d["next_attempt_at"] = None
            if d["status"] in ("pending", "failed"):
                d["status"] = "delivered" if d.get("delivered") else "dead"
            self.timers.cancel(f"webhook:{delivery_id}")
            self._save(d)

    # -- reading -----------------------------------------------------------------------------
    public = staticmethod(public)

    def get(self, delivery_id: str) -> dict | None:
        with self._lock:
            return self._deliveries.get(delivery_id)

    def list(self, provider: str | None = None, tenant: str | None = None, event_type: str | None = None) -> list[dict]:
        with self._lock:
            return [d for d in self._deliveries.values()
                    if (provider is None or d["provider"] == provider)
                    and (tenant is None or d["tenant"] == tenant)
                    and (event_type is None or d["event_type"] == event_type)]

    def flush(self) -> list[dict]:
        """Deliver everything due now; returns the deliveries that were attempted."""
        before = {d["id"]: len(d["attempts"]) for d in self.list()}
        self.timers.run_due()
        return [self.public(d) for d in self.list() if len(d["attempts"]) > before.get(d["id"], 0)]

    def reset(self, tenant: str | None = None) -> None:
        with self._lock:
            for did in [k for k, d in self._deliveries.items() if tenant is None or d["tenant"] == tenant]:
                del self._deliveries[did]
                self.timers.cancel(f"webhook:{did}")
            self._evictable = [entry for entry in self._evictable if entry[1] in self._deliveries]
            heapq.heapify(self._evictable)
            self._state.clear(_SPACE, tenant)

    def close(self) -> None:
        self.sender.close()


def _target(url: str) -> tuple | str:
    """(scheme, host, port, path) of a receiver's URL, or why no request can be made to it."""
    try:
        parts = urlsplit(url)
        target = (parts.scheme, parts.hostname, parts.port)
    except ValueError as exc:   # a port out of range, say
        return type(exc).__name__ + ": " + str(exc)[:200]
    return (*target, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))


class _Recorder:
    """Where the sender puts the answers of one batch of attempts: each is recorded as it comes.
    An attempt the closing sandbox did not make is not recorded and its timer stays saved (with a
    state file it runs again after a restart)."""

    def __init__(self, outbox: Outbox, finished: Callable[[Timer], None], count: int) -> None:
        self.outbox = outbox
        self.finished = finished
        self._lock = threading.Lock()
        self._flying: dict[int, tuple[Timer, tuple]] | None = None
        self._early: list[tuple] = []   # answers that came back before ``bind``
        self._left = count
        self.done = threading.Event()

    def bind(self, flying: dict[int, tuple[Timer, tuple]]) -> None:
        """The attempt behind each job id, once the sender has numbered them."""
        with self._lock:
            self._flying = flying
            early, self._early = self._early, []
        for answer in early:
            self.put(answer)

    def put(self, answer: tuple) -> None:
        jid, status, error = answer
        with self._lock:
            if self._flying is None:
                self._early.append(answer)
                return
            timer, (d, record, now, _) = self._flying.pop(jid)
        try:
            if error != CLOSED:
                record["status"], record["error"] = status, error
                self.outbox._record(timer, (d, record, now), self.finished)
        finally:
            # counted whatever happened to it: the flushing thread waits for the count, not for
            # every record to have been written
            with self._lock:
                self._left -= 1
                if not self._left:
                    self.done.set()
