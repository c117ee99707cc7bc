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

The child sends from one thread, an event loop (``Loop``); ``Wire`` sends from a pool of threads,
for HTTPS and for hosts that need a name lookup, and in this process when the child cannot be
started (or for ``Sender(process=False)``). The child imports nothing but the standard library and
``http1``.
"""
from __future__ import annotations

import collections
import errno
import http.client
import ipaddress
import itertools
import logging
import os
import pickle
import queue
import selectors
import socket
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


def _error_text(exc: BaseException) -> str:
    """What an attempt that failed records: the exception's type and its message."""
    return type(exc).__name__ + ": " + str(exc)[:200]


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
            answer = (jid, None, _error_text(exc))
        except Exception as exc:   # an unanswered job would leave its caller waiting for ever
            log.exception("webhook attempt %s failed", jid)
            answer = (jid, None, _error_text(exc))
        self._answered(answer)

    def _post(self, scheme: str, host: str, port: int | None, path: str, body: bytes, headers: dict,
              timeout: float) -> int:
        """POST on this thread's kept-alive connection to the receiver; never follows a redirect.
        No proxy is ever used: receivers are on loopback."""
        connections = self._local.__dict__.get("connections")
        if connections is None:
            connections = self._local.connections = OrderedDict()
        target = (scheme, host, port)
        deadline = time.monotonic() + timeout   # the retry has what the first try left of it
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
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("timed out")
                status, close = conn.post(path, body, headers, left)
                if close:
                    conn.close()
                    del connections[target]
                return status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                del connections[target]
                if not reused or isinstance(exc, TimeoutError) or conn.answered:
                    raise
                # the receiver closed an idle kept-alive connection: one retry on a fresh one (not
                # after a timeout, nor after part of an answer: that receiver has the request, and
                # a second send would deliver the event twice within one attempt)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Attempt:
    """One job of a lane on the event loop: its connection, its request, and how far it got."""
    __slots__ = ("lane", "job", "target", "request", "deadline", "conn", "reused", "sent", "reader", "answered")

    def __init__(self, lane, job: Job, target: tuple, request: bytes, timeout: float) -> None:
        self.lane, self.job, self.target, self.request = lane, job, target, request
        self.deadline = time.monotonic() + timeout
        self.conn: _Conn | None = None
        self.reused = False
        self.sent = 0
        self.reader: http1.AnswerReader | None = None
        self.answered = False   # whether any byte of an answer came: then it is never sent again


class _Conn:
    __slots__ = ("sock", "connecting", "addresses", "error")

    def __init__(self, sock, addresses: list) -> None:
        self.sock, self.connecting = sock, True
        self.addresses = addresses    # what is left to try if this address refuses, as create_connection does
        self.error: OSError | None = None


class _Handed:
    """A lane waiting for a slot, to be sent by the thread pool."""
    __slots__ = ("jobs",)

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs


class Loop:
    """Sends jobs from one thread with non-blocking sockets: ``workers`` lanes side by side, each
    lane's jobs one after the other, on connections kept alive per receiver.

    The same exchange as ``Wire`` (``http1``'s request bytes and answer reader, one retry on a fresh
    connection when a kept-alive one turns out closed, never after a timeout or part of an answer,
    the timeout bounding the whole attempt), without a thread per attempt: in a pool every attempt wakes a thread and
    every socket call hands the interpreter lock over, which cost the sender process about twice
    the CPU of the exchanges themselves, CPU the sandbox shares the machine with. HTTPS, and hosts
    that need a name lookup (which blocks), go to a ``Wire``."""

    def __init__(self, workers: int, answered: Callable[[Answer], None],
                 after: Callable[[], float | None] = lambda: None) -> None:
        """``answered(answer)`` and ``after()`` run on the loop's thread, ``after`` once each turn
        of the loop: the seconds it wants to be called again within, or None."""
        self.workers = workers
        self._answered = answered
        self._after = after
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._incoming: collections.deque = collections.deque()   # lanes from other threads
        self._relayed: collections.deque = collections.deque()    # answers of the Wire's threads
        self._waiting: collections.deque = collections.deque()    # lanes for a free slot
        self._running: set[_Attempt] = set()
        self._idle: OrderedDict[tuple, list[_Conn]] = OrderedDict()   # kept alive, most recent last
        self._wire: Wire | None = None
        self._handed = 0                          # lanes with the Wire, not all answered
        self._handed_jobs: dict[int, int] = {}    # their job ids -> the id of their lane's last job
        self._closed = False
        threading.Thread(target=self._run, name="sandbox-sender-loop", daemon=True).start()

    def submit(self, lane: list[Job]) -> None:
        self._incoming.append(lane)
        self._wake()

    def _relay(self, answer: Answer) -> None:
        self._relayed.append(answer)
        self._wake()

    def _hand_over(self, lane: list[Job]) -> None:
        """A lane for the thread pool; it holds one of the ``workers`` slots until its last answer."""
        if self._wire is None:
            self._wire = Wire(self.workers, self._relay)
        self._handed += 1
        for job in lane:
            self._handed_jobs[job[0]] = lane[-1][0]
        self._wire.submit(lane)

    def _wake(self) -> None:
        try:
            self._wake_write.send(b"\0")
        except OSError:   # a full wake-up socket already wakes the loop
            pass

    def close(self) -> None:
        self._closed = True
        self._wake()

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        later = None
        while not self._closed:
            timeout = later
            if self._running:
                first = max(0.0, min(a.deadline for a in self._running) - time.monotonic())
                timeout = first if timeout is None else min(timeout, first)
            for key, events in self._selector.select(timeout):
                if key.data is None:
                    while True:
                        try:
                            if not self._wake_read.recv(4096):
                                break
                        except BlockingIOError:
                            break
                elif isinstance(key.data, tuple):
                    self._idle_event(*key.data)
                elif key.data.conn is not None and key.data.conn.sock is key.fileobj:
                    # (not an event of a socket an earlier event of this turn closed or took)
                    self._step(key.data, events)
            while self._incoming:
                lane = self._incoming.popleft()
                self._waiting.append(_Handed(lane) if _for_the_pool(lane) else lane)
            now = time.monotonic()
            for attempt in [a for a in self._running if a.deadline <= now]:
                self._fail(attempt, TimeoutError("timed out"))
            while self._relayed:
                answer = self._relayed.popleft()
                if self._handed_jobs.pop(answer[0], None) == answer[0]:
                    self._handed -= 1
                self._answered(answer)
            while self._waiting and len(self._running) + self._handed < self.workers:
                lane = self._waiting.popleft()
                if lane.__class__ is _Handed:
                    self._hand_over(lane.jobs)
                else:
                    self._next(lane if lane.__class__ is not list else iter(lane))
            later = self._after()
        # the pool is the loop's own (made on this thread), so it ends with it
        if self._wire is not None:
            self._wire.close()
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()
        self._selector.close()
        self._wake_write.close()

    def _next(self, lane) -> None:
        """Start the lane's next job; a lane with none left frees its slot."""
        while (job := next(lane, None)) is not None:
            attempt = None
            try:
                _, scheme, host, port, path, body, headers, timeout = job
                request = http1.request(http1.host_header(scheme, host, port), path, body, headers)
                attempt = _Attempt(lane, job, (host, port or 80), request, timeout)
                self._running.add(attempt)
                self._connect(attempt, fresh=False)
                return
            except Exception as exc:   # a job nobody can send (a port out of range, a header name
                # that is not a string): its answer says why, as ``Wire``'s does, and the lane goes on
                if attempt is not None and attempt in self._running:
                    self._fail(attempt, exc)
                    return
                self._answer(job, exc)
    def _connect(self, attempt: _Attempt, fresh: bool) -> None:
        idle = None if fresh else self._idle.get(attempt.target)
        if idle:
            conn = idle.pop()
            if not idle:
                del self._idle[attempt.target]
            attempt.conn, attempt.reused, attempt.sent, attempt.reader = conn, True, 0, None
            # a kept-alive socket stays registered for reading: sending at once saves a turn of
            # the loop and two changes of the registration per attempt
            self._selector.modify(conn.sock, selectors.EVENT_READ, attempt)
            self._step(attempt, selectors.EVENT_WRITE)
            return
        try:
            addresses = _addresses(*attempt.target)
        except OSError as exc:
            self._fail(attempt, exc)
            return
        attempt.conn, attempt.reused, attempt.sent, attempt.reader = _Conn(None, addresses), False, 0, None
        self._dial(attempt)

    def _dial(self, attempt: _Attempt) -> None:
        """Connect to the next address; as ``socket.create_connection``, the last error is the one
        raised when none takes the connection."""
        conn = attempt.conn
        while conn.addresses:
            family, kind, proto, _, address = conn.addresses.pop(0)
            sock = None
            try:
                sock = socket.socket(family, kind, proto)
                sock.setblocking(False)
                code = sock.connect_ex(address)
            except (OSError, OverflowError, TypeError) as exc:   # as create_connection raises them
                if sock is not None:
                    sock.close()
                conn.error = exc
                continue
            if code in (0, errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK, errno.EALREADY):
                conn.sock = sock
                self._selector.register(sock, selectors.EVENT_WRITE, attempt)
                return
            sock.close()
            conn.error = OSError(code, os.strerror(code))
        self._fail(attempt, conn.error or OSError("getaddrinfo returns an empty list"))

    def _step(self, attempt: _Attempt, events: int) -> None:
        conn = attempt.conn
        try:
            if conn.connecting:
                code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    self._selector.unregister(conn.sock)
                    conn.sock.close()
                    conn.error = OSError(code, os.strerror(code))
                    self._dial(attempt)
                    return
                conn.connecting = False
            if attempt.reader is None:
                attempt.sent += conn.sock.send(memoryview(attempt.request)[attempt.sent:])
                if attempt.sent < len(attempt.request):
                    self._selector.modify(conn.sock, selectors.EVENT_WRITE, attempt)
                    return
                attempt.reader = http1.AnswerReader()
                self._selector.modify(conn.sock, selectors.EVENT_READ, attempt)
                answer = attempt.reader.start()
            else:
                received = conn.sock.recv(65536)
                attempt.answered = attempt.answered or bool(received)
                answer = attempt.reader.feed(received)
        except BlockingIOError:
            if attempt.reader is None:   # a send that took nothing: go on when the socket can take more
                self._selector.modify(conn.sock, selectors.EVENT_WRITE, attempt)
            return
        except (OSError, http.client.HTTPException) as exc:
            if attempt.reused and not attempt.answered:
                # a kept-alive connection the receiver had closed: once more, afresh, within what
                # is left of the attempt's time
                self._drop(attempt)
                self._connect(attempt, fresh=True)
            else:
                self._fail(attempt, exc)
            return
        except Exception as exc:   # an unanswered job would leave its caller waiting for ever
            log.exception("webhook attempt %s failed", attempt.job[0])
            self._fail(attempt, exc)
            return
        if answer is None:
            return
        status, close = answer
        if close or attempt.reader.buffer:   # bytes after the answer: nobody asked for them
            self._close(conn)
        else:
            self._keep(attempt.target, conn)
        self._done(attempt, (attempt.job[0], status, None))

    def _keep(self, target: tuple, conn: _Conn) -> None:
        # registered still: a receiver that closes it wakes the loop, which lets it go (``_idle_event``)
        self._selector.modify(conn.sock, selectors.EVENT_READ, (target, conn))
        idle = self._idle.setdefault(target, [])
        self._idle.move_to_end(target)
        idle.append(conn)
        while len(idle) > self.workers:
            self._close(idle.pop(0))
        # as ``Wire`` bounds each worker's: a suite may start a receiver per test on a port of its own
        while len(self._idle) > KEPT_ALIVE:
            for old in self._idle.popitem(last=False)[1]:
                self._close(old)

    def _idle_event(self, target: tuple, conn: _Conn) -> None:
        """A kept-alive connection with nothing asked of it became readable: closed by the
        receiver (or sending what nobody asked for). Either way it is of no further use."""
        idle = self._idle.get(target, [])
        if conn not in idle:   # taken by an attempt earlier in this turn of the loop
            return
        idle.remove(conn)
        if not idle:
            del self._idle[target]
        self._close(conn)

    def _close(self, conn: _Conn) -> None:
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _drop(self, attempt: _Attempt) -> None:
        conn, attempt.conn = attempt.conn, None
        if conn is not None and conn.sock is not None:
            self._close(conn)

    def _fail(self, attempt: _Attempt, exc: BaseException) -> None:
        self._drop(attempt)
        self._done(attempt, (attempt.job[0], None, _error_text(exc)))

    def _done(self, attempt: _Attempt, answer: Answer) -> None:
        self._running.discard(attempt)
        self._answered(answer)
        # the lane goes on from the loop, ahead of lanes not started: called from here, a lane of
        # attempts that each fail at once would recurse once per attempt
        self._waiting.appendleft(attempt.lane)

    def _answer(self, job: Job, exc: BaseException) -> None:
        self._answered((job[0], None, _error_text(exc)))


def _addresses(host: str, port: int) -> list:
    """What ``socket.create_connection`` would try, in its order; an address is its own answer."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    if ip.version != 4:   # no name lookup either, and the scope of a link-local address
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]


def _for_the_pool(lane: list[Job]) -> bool:
    """Whether a lane has HTTPS (a handshake) or a host name (a lookup) in it: either would stop
    the loop while it waited."""
    try:
        return not all(job[1] != "https" and _literal(job[2]) for job in lane)
    except Exception:   # a malformed job: the loop answers it with its error
        return False


def _literal(host: str) -> bool:
    """Whether ``host`` needs no name lookup that could block the loop (``localhost`` is a line
    of the hosts file)."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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
    batch: list[Answer] = []
    received = [0]        # jobs read so far (by this thread)
    written = [0, 0.0]    # answers written so far; when the first answer of ``batch`` came

    def answered(answer: Answer) -> None:
        if not batch:
            written[1] = time.monotonic()
        batch.append(answer)

    def write() -> float | None:
        # each frame wakes a thread of the sandbox, which then waits for its interpreter lock:
        # the answers of one batch go back together, unless some keep the others waiting
        if not batch:
            return None
        left = written[1] + hold - time.monotonic()
        if written[0] + len(batch) < received[0] and left > 0:
            return left
        try:
            _write_frame(sink, batch)
        except OSError:
            os._exit(0)
        written[0] += len(batch)
        batch.clear()
        return None

    loop = Loop(workers, answered, write)
    while (lanes := _read_frame(source)) is not None:
        received[0] += sum(map(len, lanes))
        for lane in lanes:
            loop.submit(lane)
    os._exit(0)   # the sandbox is gone: attempts still on the wire have no one to report to
