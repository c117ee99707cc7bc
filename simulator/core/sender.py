"""Webhook attempts on the wire, from a child process.

An attempt sent from the server's own threads costs the API more than the attempt itself: the
server is bound by one interpreter lock, and every socket call of a delivery thread gives it up
and waits for it back while request threads hold it, so each attempt forced several thread
switches on the request threads (with a receiver configured, a create that sends two events ran
at 0.6 of its rate without one). The sandbox builds and signs each request, then hands a batch of them to a
child process in one pipe write; the child sends them side by side on kept-alive connections and
writes the answers back in batches. A batch is made of lanes: the requests of one lane are sent
one after the other, in order, so the events of one object need no round trip through the
sandbox between them. What an attempt records (status, or the error and its text) is the same as
when it was sent in process.

The child imports nothing but the standard library and ``http1``. If it cannot be started, or for
``Sender(process=False)``, the same ``Wire`` runs in this process.
"""
from __future__ import annotations

import http.client
import itertools
import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

try:
    from . import http1
except ImportError:   # in the child, which runs this file without the simulator package
    import http1

log = logging.getLogger("simulator.sender")

# (id, scheme, host, port, path, body, headers, timeout)
Job = tuple
# (id, HTTP status or None, error text or None)
Answer = tuple
# the error of an answer given because the sandbox is closing: the attempt did not happen, and is
# not to be recorded (with a state file, its timer runs again after a restart)
CLOSED = "the sandbox closed before the attempt was made"

_LENGTH = struct.Struct(">I")
# receivers each sending worker keeps a connection to, the most recently used
KEPT_ALIVE = 16


def _write_frame(stream, items: list) -> None:
    payload = pickle.dumps(items, pickle.HIGHEST_PROTOCOL)
    data = memoryview(_LENGTH.pack(len(payload)) + payload)
    # an unbuffered pipe may take part of a write (a signal arriving mid-write): the rest follows,
    # or the reader would wait for ever for the end of the frame
    while data:
        data = data[stream.write(data):]
    stream.flush()


def _read_exactly(stream, size: int) -> bytes:
    """``size`` bytes, fewer only at the end of the stream: one read of an unbuffered pipe gives
    at most what the pipe holds (64 KiB), and a larger frame comes in several."""
    data = stream.read(size)
    if len(data) == size or not data:
        return data
    parts, got = [data], len(data)
    while got < size and (more := stream.read(size - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _read_frame(stream) -> list | None:
    head = _read_exactly(stream, _LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    size = _LENGTH.unpack(head)[0]
    data = _read_exactly(stream, size)
    if len(data) < size:
        return None
    return pickle.loads(data)


class Wire:
    """Sends jobs on a bounded pool of threads, each with its own kept-alive connections, and
    gives every answer to ``answered``."""

    def __init__(self, workers: int, answered: Callable[[Answer], None]) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sandbox-wire")
        self._answered = answered
        self._local = threading.local()

    def submit(self, lane: list[Job]) -> None:
        """Send the jobs of ``lane`` one after the other, each once the one before is answered."""
        self._pool.submit(self._run_lane, lane)

    def _run_lane(self, lane: list[Job]) -> None:
        for job in lane:
            self._run(job)

    def _run(self, job: Job) -> None:
        jid, scheme, host, port, path, body, headers, timeout = job
        try:
            answer = (jid, self._post(scheme, host, port, path, body, headers, timeout), None)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            answer = (jid, None, type(exc).__name__ + ": " + str(exc)[:200])
        except Exception as exc:   # an unanswered job would leave its caller waiting for ever
            log.exception("webhook attempt %s failed", jid)
            answer = (jid, None, type(exc).__name__ + ": " + str(exc)[:200])
        self._answered(answer)

    def _post(self, scheme: str, host: str, port: int | None, path: str, body: bytes, headers: dict,
              timeout: float) -> int:
        """POST on this thread's kept-alive connection to the receiver; never follows a redirect.
        No proxy is ever used: receivers are on loopback."""
        connections = self._local.__dict__.get("connections")
        if connections is None:
            connections = self._local.connections = OrderedDict()
        target = (scheme, host, port)
        for reused in (True, False):
            conn = connections.get(target)
            if conn is None:
                conn = connections[target] = http1.Connection(*target)
                # a test suite may start a receiver per test on a port of its own: a connection
                # kept to each would hold a descriptor per receiver ever used, until none is left
                while len(connections) > KEPT_ALIVE:
                    connections.popitem(last=False)[1].close()
            else:
                connections.move_to_end(target)
            reused = reused and conn.connected
            try:
                status, close = conn.post(path, body, headers, timeout)
                if close:
                    conn.close()
                    del connections[target]
                return status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                del connections[target]
                if not reused or isinstance(exc, TimeoutError):
                    raise
                # the receiver closed an idle kept-alive connection: one retry on a fresh one (not
                # after a timeout: that receiver has the request and is slow, and a second send
                # would deliver the event twice within one attempt)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Sender:
    """The sandbox's end: ``submit`` jobs with an inbox; each answer is put in the inbox its job
    came with."""

    def __init__(self, workers: int = 8, *, process: bool = True) -> None:
        self.workers = workers
        self.process = process
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        # job id -> (inbox, the child it was sent to, or None for this process)
        self._inboxes: dict[int, tuple[queue.SimpleQueue, subprocess.Popen | None]] = {}
        self._child: subprocess.Popen | None = None
        self._wire: Wire | None = None
        self._closed = False

    def submit(self, lanes: list[list[tuple]], inbox) -> list[list[int]]:
        """Send each lane's (scheme, host, port, path, body, headers, timeout) in order, the lanes
        side by side; returns their ids, lane by lane. Each answer goes to ``inbox.put``, perhaps
        before this returns."""
        with self._lock:
            numbered = [[(next(self._ids), *job) for job in lane] for lane in lanes]
            ids = [[job[0] for job in lane] for lane in numbered]
            if self._closed:
                for lane in ids:
                    for jid in lane:
                        inbox.put((jid, None, CLOSED))
                return ids
            if self._child is None and self._wire is None:
                self._start()
            if self._child is not None:
                try:
                    _write_frame(self._child.stdin, numbered)
                except (OSError, ValueError):
                    # the child fails what it had; these never reached it and go from this process
                    self._lost(self._child)
                else:
                    # registered after the write: the reader takes this lock before it looks
                    for lane in ids:
                        for jid in lane:
                            self._inboxes[jid] = (inbox, self._child)
                    return ids
            for lane in numbered:
                for job in lane:
                    self._inboxes[job[0]] = (inbox, None)
                self._wire.submit(lane)
        return ids

    def _start(self) -> None:
        # caller holds the lock
        if self.process:
            here = os.path.dirname(os.path.abspath(__file__))
            code = f"import sys; sys.path.insert(0, {here!r}); import sender; sender.serve({self.workers})"
            try:
                # -I -S: only the standard library, none of the app's imports
                self._child = subprocess.Popen([sys.executable, "-I", "-S", "-c", code], stdin=subprocess.PIPE,
                                               stdout=subprocess.PIPE, bufsize=0)
            except OSError as exc:
                log.warning("cannot start the webhook sender process (%s); sending from this process", exc)
            else:
                threading.Thread(target=self._read, args=(self._child,), name="sandbox-sender-reader",
                                 daemon=True).start()
                return
        self._wire = Wire(self.workers, self._answer)

    def _answer(self, answer: Answer) -> None:
        with self._lock:
            waiting = self._inboxes.pop(answer[0], None)
        if waiting is not None:
            try:
                waiting[0].put(answer)
            except Exception:
                # the reader thread must outlive one answer that could not be recorded (a state
                # file that refused a write, say): the answers after it are waited for
                log.exception("recording the answer to webhook attempt %s failed", answer[0])

    def _read(self, child: subprocess.Popen) -> None:
        stream = child.stdout
        while (answers := _read_frame(stream)) is not None:
            for answer in answers:
                self._answer(answer)
        with self._lock:
            self._lost(child)

    def _lost(self, child: subprocess.Popen | None) -> None:
        """What ``child`` had not answered fails (and is retried on its schedule). Unless the sandbox
        is closing, what follows is sent from this process rather than from a child that may die
        the same way."""
        # caller holds the lock
        if child is not None and self._child is child:
            log.warning("the webhook sender process is gone (exit %s); sending from this process", child.poll())
            self._child = None
            self._wire = Wire(self.workers, self._answer)
        error = CLOSED if self._closed else "ConnectionError: the webhook sender process exited"
        for jid, (inbox, owner) in list(self._inboxes.items()):
            if owner is child:
                del self._inboxes[jid]
                inbox.put((jid, None, error))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            child, self._child = self._child, None
            wire, self._wire = self._wire, None
            self._lost(None)   # attempts the in-process wire will not finish
        if wire is not None:
            wire.close()
        if child is not None:
            try:
                child.stdin.close()   # the child exits when its input ends, and its reader fails the rest
                child.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                child.kill()
                child.wait()


def serve(workers: int, hold: float = 0.002) -> None:
    """The child: read batches of jobs on stdin, write batches of answers on stdout."""
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    answers: queue.SimpleQueue = queue.SimpleQueue()
    wire = Wire(workers, answers.put)
    received = [0]   # jobs read so far, against the answers written: what is still out

    def write() -> None:
        done = 0
        while True:
            batch = [answers.get()]
            # each frame wakes a thread of the sandbox, which then waits for its interpreter lock:
            # the answers of one batch go back together, unless some keep the others waiting
            deadline = time.monotonic() + hold
            while True:
                while not answers.empty():
                    batch.append(answers.get_nowait())
                if done + len(batch) >= received[0]:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(answers.get(timeout=left))
                except queue.Empty:
                    break
            done += len(batch)
            try:
                _write_frame(sink, batch)
            except OSError:
                os._exit(0)

    threading.Thread(target=write, daemon=True).start()
    while (lanes := _read_frame(source)) is not None:
        received[0] += sum(map(len, lanes))
        for lane in lanes:
            wire.submit(lane)
    os._exit(0)   # the sandbox is gone: attempts still on the wire have no one to report to
