"""Webhook attempts go on the wire from a child process; what they record does not depend on it."""
import io
import itertools
import os
import queue
import socket
import threading
import time
from datetime import timedelta

import pytest

from simulator.core.runtime import Sandbox
from simulator.core import sender as sender_module
from simulator.core.sender import Sender
from simulator.testing import DEFAULT_START, refused_port

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture
def refused():
    with refused_port() as port:
        yield port


def sandbox(**sender) -> Sandbox:
    sb = Sandbox(seed=1, clock_start=DEFAULT_START, webhooks_mode="manual")
    if sender:
        sb.outbox.sender = Sender(**sender)
    return sb


def enqueue(sb, url, n=0, **kw):
    return sb.outbox.enqueue(provider="none", tenant="t", event_type="e", url=url, body=b'{"n": %d}' % n,
                             schedule=kw.pop("schedule", []), **kw)[0]


def owner_of(port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the TCP socket bound to local ``port`` (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return pid
    return None


@pytest.fixture
def listener():
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


def _serving(handle) -> socket.socket:
    """A receiver that runs ``handle(conn, n)`` for its n-th connection, each on a thread."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)

    def run(conn, n):
        try:
            handle(conn, n)
        except OSError:   # the sender closed a connection this receiver still wrote to
            pass

    def accept():
        for n in itertools.count():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=run, args=(conn, n), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server


def _answering(answer: bytes = OK, connections: list | None = None) -> socket.socket:
    """A receiver that reads one request on each connection, answers ``answer`` and closes it;
    each connection's number goes to ``connections``."""
    def handle(conn, n):
        if connections is not None:
            connections.append(n)
        with conn:
            conn.recv(65536)
            conn.sendall(answer)

    return _serving(handle)


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads Linux /proc")
def test_an_attempt_is_sent_by_the_child_process_not_by_a_thread_of_the_sandbox(listener):
    sb = sandbox()
    try:
        d = enqueue(sb, f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
        flushing = threading.Thread(target=sb.outbox.flush)
        flushing.start()
        conn, peer = listener.accept()
        child = sb.outbox.sender._child
        assert child is not None and child.pid != os.getpid()
        assert owner_of(peer[1], [os.getpid(), child.pid]) == child.pid
        conn.recv(65536)
        conn.sendall(OK)
        flushing.join(10)
        assert [a["status"] for a in d["attempts"]] == [200] and d["status"] == "delivered"
        assert not [t for t in threading.enumerate() if t.name.startswith(("sandbox-wire", "sandbox-timer"))]
        conn.close()
    finally:
        sb.close()
    child.wait(5)
    assert child.returncode is not None   # closing the sandbox ends its sender


def test_a_sender_process_that_dies_fails_its_attempt_and_later_ones_go_from_the_sandbox(listener, receiver):
    sb = sandbox()
    try:
        hung = enqueue(sb, f"http://127.0.0.1:{listener.getsockname()[1]}/hook", schedule=[timedelta(minutes=5)])
        flushing = threading.Thread(target=sb.outbox.flush)
        flushing.start()
        conn, _ = listener.accept()   # the attempt is on the wire, and the receiver never answers
        sb.outbox.sender._child.kill()
        flushing.join(10)
        assert not flushing.is_alive()
        assert [a["error"] for a in hung["attempts"]] == ["ConnectionError: the webhook sender process exited"]
        assert hung["status"] == "failed" and hung["next_attempt_at"] == "2026-01-01T00:05:00.000Z"
        conn.close()

        later = enqueue(sb, receiver.url + "/hook", n=1)
        sb.outbox.flush()
        assert [a["status"] for a in later["attempts"]] == [200] and receiver.json() == [{"n": 1}]
        assert sb.outbox.sender._child is None
    finally:
        sb.close()


def test_the_child_and_the_in_process_sender_record_the_same_attempts(receiver, refused):
    url = f"http://127.0.0.1:{refused}/hook"
    attempts = []
    for sender in ({}, {"process": False}):
        sb = sandbox(**sender)
        try:
            receiver.status = 503
            made = [enqueue(sb, receiver.url + "/a"),
                    enqueue(sb, url),
                    enqueue(sb, "http://127.0.0.1:99999/port-out-of-range"),
                    enqueue(sb, receiver.url + "/b", headers={"X-Bad": "line\nbreak"}),
                    enqueue(sb, receiver.url + "/c", headers={"X-Merchant": "m-1"}),
                    # the child sends HTTPS from threads, and a host name may have several addresses
                    enqueue(sb, f"https://127.0.0.1:{refused}/tls"),
                    enqueue(sb, receiver.url.replace("127.0.0.1", "localhost") + "/d")]
            sb.outbox.flush()
            attempts.append([(d["id"], [(a["at"], a["status"], a["error"]) for a in d["attempts"]]) for d in made])
        finally:
            sb.close()
    assert attempts[0] == attempts[1]
    statuses = [records[0][1:] for _, records in attempts[0]]
    assert statuses[0] == (503, None) and statuses[4] == (503, None)
    assert statuses[1][0] is None and statuses[1][1].startswith("ConnectionRefusedError")
    assert statuses[2][0] is None and statuses[2][1].startswith("ValueError: Port out of range")
    assert statuses[3] == (None, "ValueError: Invalid header value 'line\\nbreak'")
    assert statuses[5][0] is None and statuses[5][1].startswith("ConnectionRefusedError")
    assert statuses[6] == (503, None)
    paths = sorted(r["path"] for r in receiver.requests)
    assert paths == ["/a", "/a", "/c", "/c", "/d", "/d"] and all(
        r["headers"].get("X-Merchant") == "m-1" for r in receiver.requests if r["path"] == "/c")


def test_attempts_of_one_flush_reach_a_receiver_side_by_side():
    # the receiver answers none of eight attempts before it holds all eight: sent one after
    # another, the first would wait for ever (until the barrier gives up)
    gate = threading.Barrier(9, timeout=10)
    server = socket.create_server(("127.0.0.1", 0), backlog=16)
    held = []

    def serve():
        conn, _ = server.accept()
        held.append(conn)
        conn.recv(65536)
        gate.wait()
        conn.sendall(OK)

    threads = [threading.Thread(target=serve) for _ in range(8)]
    for t in threads:
        t.start()
    sb = sandbox()
    try:
        made = [enqueue(sb, f"http://127.0.0.1:{server.getsockname()[1]}/hook", n=n) for n in range(8)]
        flushing = threading.Thread(target=sb.outbox.flush)
        flushing.start()
        gate.wait()
        flushing.join(10)
        assert all([a["status"] for a in d["attempts"]] == [200] for d in made)
    finally:
        sb.close()
        for conn in held:
            conn.close()
        server.close()


def test_closing_the_sandbox_mid_attempt_records_nothing_and_a_restart_attempts_again(listener, tmp_path):
    path = str(tmp_path / "state.db")
    sb = Sandbox(seed=1, clock_start=DEFAULT_START, webhooks_mode="manual", state_path=path)
    d = enqueue(sb, f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
    flushing = threading.Thread(target=sb.outbox.flush)
    flushing.start()
    conn, _ = listener.accept()   # on the wire, never answered
    sb.close()
    flushing.join(10)
    assert not flushing.is_alive()
    conn.close()
    again = Sandbox(seed=1, clock_start=DEFAULT_START, webhooks_mode="manual", state_path=path)
    try:
        kept = again.outbox.get(d["id"])
        assert not kept["attempts"] and kept["status"] == "pending"
        assert [t.key for t in again.timers.pending()] == [f"webhook:{d['id']}"]
    finally:
        again.close()


@pytest.mark.parametrize("sender", [{}, {"process": False}], ids=["child", "in-process"])
def test_one_flush_hands_the_sender_each_lane_whole_and_the_receiver_gets_each_in_order(receiver, sender):
    # two objects, three events each: one submit of two lanes, not one submit per event of a lane
    sb = sandbox(**sender)
    submitted = []
    submit = sb.outbox.sender.submit
    sb.outbox.sender.submit = lambda lanes, inbox: submitted.append([len(lane) for lane in lanes]) or submit(lanes, inbox)
    try:
        made = [enqueue(sb, receiver.url + f"/{subject}", n=n, subject=subject)
                for n in range(3) for subject in ("pay_a", "pay_b")]
        sb.outbox.flush()
        assert submitted == [[3, 3]]
        assert all([a["status"] for a in d["attempts"]] == [200] and d["status"] == "delivered" for d in made)
        for subject in ("pay_a", "pay_b"):
            bodies = [r["body"] for r in receiver.requests if r["path"] == f"/{subject}"]
            assert bodies == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    finally:
        sb.close()


def test_a_flush_after_the_sender_closed_returns_and_records_nothing(refused):
    # the closed sender answers inside submit, before the attempts' ids are known to the outbox
    sb = sandbox()
    try:
        d = enqueue(sb, f"http://127.0.0.1:{refused}/hook")
        sb.outbox.sender.close()
        flushing = threading.Thread(target=sb.outbox.flush)
        flushing.start()
        flushing.join(10)
        assert not flushing.is_alive()
        assert not d["attempts"] and d["status"] == "pending"
    finally:
        sb.close()


def test_attempts_that_never_reached_a_dead_sender_process_go_from_the_sandbox_once(receiver):
    # the write to the child fails before the reader has seen it die: those attempts were never
    # on the wire, so they are sent from this process and recorded once, not failed as well
    sb = sandbox()
    try:
        enqueue(sb, receiver.url + "/warm-up")
        sb.outbox.flush()   # the child is running
        sb.outbox.sender._child.stdin.close()
        d = enqueue(sb, receiver.url + "/hook", n=1, schedule=[timedelta(minutes=5)])
        sb.outbox.flush()
        assert [(a["status"], a["error"]) for a in d["attempts"]] == [(200, None)]
        assert d["status"] == "delivered"
        assert [r["path"] for r in receiver.requests] == ["/warm-up", "/hook"]
    finally:
        sb.close()


def test_a_frame_larger_than_the_pipe_holds_is_read_whole():
    # one read of an unbuffered pipe gives at most what the pipe holds (64 KiB): the reader of
    # the child's answers must not take a large frame's first part for a child that exited
    read_end, write_end = os.pipe()
    answers = [(n, None, "ConnectionRefusedError: [Errno 111] Connection refused") for n in range(10_000)]
    with os.fdopen(read_end, "rb", buffering=0) as source, os.fdopen(write_end, "wb", buffering=0) as sink:
        writing = threading.Thread(target=sender_module._write_frame, args=(sink, answers))
        writing.start()
        assert sender_module._read_frame(source) == answers
        writing.join(10)


class _TakesPartOfEachWrite(io.RawIOBase):
    """A pipe that a signal interrupts mid-write: each write takes at most ``part`` bytes."""

    def __init__(self, part: int) -> None:
        self.part, self.taken = part, bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.taken += bytes(data[:self.part])
        return min(len(data), self.part)


def test_a_frame_the_pipe_takes_in_parts_is_written_whole():
    jobs = [[(n, "http", "127.0.0.1", 1, "/hook", b"x" * 100, {}, 5.0)] for n in range(50)]
    sink = _TakesPartOfEachWrite(1000)
    sender_module._write_frame(sink, jobs)
    assert sender_module._read_frame(io.BytesIO(bytes(sink.taken))) == jobs


def test_answers_that_pile_up_while_the_sandbox_is_busy_come_back_from_the_same_child(refused):
    # while the sandbox does not read (here: its reader waits for the sender's lock), the child's
    # answers fill the pipe and wait; they come back in one frame larger than the pipe holds
    sender = Sender()
    inbox = queue.SimpleQueue()
    job = ("http", "127.0.0.1", refused, "/hook", b"{}", {}, 5.0)
    try:
        ids = sender.submit([[job] for _ in range(3000)], inbox)
        child = sender._child
        with sender._lock:
            time.sleep(1.5)
        answers = [inbox.get(timeout=30) for _ in range(3000)]
        assert sorted(a[0] for a in answers) == sorted(jid for lane in ids for jid in lane)
        assert {a[2].split(":")[0] for a in answers} == {"ConnectionRefusedError"}
        assert sender._child is child and child.poll() is None
    finally:
        sender.close()


@pytest.mark.parametrize("kind", ["Wire", "Loop"])
def test_an_attempt_that_times_out_on_a_kept_alive_connection_is_not_sent_again(kind):
    # a receiver that has the request and answers late is slow, not gone: sending the event again
    # on a fresh connection would deliver it twice within one attempt
    requests_seen, lock = [], threading.Lock()

    def serve(conn):
        with conn:
            while data := conn.recv(65536):
                with lock:
                    requests_seen.append(data)
                    first = len(requests_seen) == 1
                if not first:
                    time.sleep(3)   # the second request is answered after the attempt's timeout
                    return
                conn.sendall(OK)

    server = _serving(lambda conn, n: serve(conn))
    answers = queue.SimpleQueue()
    wire = getattr(sender_module, kind)(1, answers.put)
    port = server.getsockname()[1]
    try:
        wire.submit([(1, "http", "127.0.0.1", port, "/hook", b"{}", {}, 1.0),
                     (2, "http", "127.0.0.1", port, "/hook", b"{}", {}, 1.0)])
        assert answers.get(timeout=10) == (1, 200, None)
        assert answers.get(timeout=10) == (2, None, "TimeoutError: timed out")
        time.sleep(0.5)   # a second send would have reached the receiver by now
        assert len(requests_seen) == 2
    finally:
        wire.close()
        server.close()


def test_an_answer_that_cannot_be_recorded_does_not_stop_the_answers_after_it(receiver):
    # recording an answer can fail (a state file that refuses a write): the thread that reads the
    # child's answers must go on, or the flush waits for ever and no webhook is recorded again
    sb = sandbox()
    try:
        first, second = enqueue(sb, receiver.url + "/a"), enqueue(sb, receiver.url + "/b", n=1)
        finished, calls = sb.timers._finished, []

        def fails_once(timer):
            calls.append(timer.key)
            if len(calls) == 1:
                raise OSError("No space left on device")
            finished(timer)

        sb.timers._finished = fails_once
        flushing = threading.Thread(target=sb.outbox.flush)
        flushing.start()
        flushing.join(10)
        assert not flushing.is_alive()
        assert len(calls) == 2
        assert [a["status"] for a in first["attempts"]] == [200] and [a["status"] for a in second["attempts"]] == [200]

        later = enqueue(sb, receiver.url + "/c", n=2)
        sb.outbox.flush()
        assert [a["status"] for a in later["attempts"]] == [200]
    finally:
        sb.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="reads Linux /proc")
def test_connections_kept_alive_are_bounded_however_many_receivers_came_and_went():
    # a suite that starts a receiver per test on a port of its own, against one sandbox: a
    # connection kept to every receiver ever used would hold a descriptor each in the sender
    sb = sandbox()
    receivers = 400
    try:
        for n in range(receivers):
            with _answering() as server:
                d = enqueue(sb, f"http://127.0.0.1:{server.getsockname()[1]}/hook", n=n)
                sb.outbox.flush()
            assert [a["status"] for a in d["attempts"]] == [200]
        child = sb.outbox.sender._child
        kept = len(os.listdir(f"/proc/{child.pid}/fd"))
        assert kept < receivers // 2   # one per receiver before: over 400
    finally:
        sb.close()


# -- the child's event loop ----------------------------------------------------------------

def loop_answers(jobs: list, lanes: int = 1, workers: int = 8, timeout: float = 10) -> list:
    """The answers of ``jobs`` sent by a ``Loop``, split into ``lanes`` lanes, in job id order."""
    answers = queue.SimpleQueue()
    loop = sender_module.Loop(workers, answers.put)
    try:
        numbered = [(n, *job) for n, job in enumerate(jobs)]
        for k in range(lanes):
            loop.submit(numbered[k::lanes])
        got = [answers.get(timeout=timeout) for _ in jobs]
    finally:
        loop.close()
    return sorted(got)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nok\r\n1\r\n!\r\n0\r\nTrailer: t\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbad",
    b"HTTP/1.1 200 OK\r\n\r\nbody until the connection closes",
    b"",
    b"SPAM\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
], ids=["length", "chunked", "continue", "close", "until-close", "nothing", "spam", "short", "bad-length"])
def test_the_loop_records_what_the_blocking_client_records(answer):
    # the child sends from an event loop, the sandbox's fallback from threads: one attempt must
    # read the same either way, down to the error's text
    recorded = []
    for kind in ("Wire", "Loop"):
        server = _answering(answer)
        answers = queue.SimpleQueue()
        wire = getattr(sender_module, kind)(1, answers.put)
        try:
            wire.submit([(1, "http", "127.0.0.1", server.getsockname()[1], "/hook", b"{}", {}, 5.0)])
            recorded.append(answers.get(timeout=10))
        finally:
            wire.close()
            server.close()
    assert recorded[0] == recorded[1]


def test_a_long_lane_of_attempts_that_fail_at_once_is_answered_whole():
    # the broadcast address is refused as the connection is made, not a turn of the loop later:
    # going on to the lane's next attempt from the last one's failure would recurse once per attempt
    unreachable = ("http", "255.255.255.255", 80, "/hook", b"{}", {}, 5.0)
    answers = loop_answers([unreachable] * 3000)
    errors = {a[2] for a in answers}
    assert len(answers) == 3000 and len(errors) == 1 and {a[1] for a in answers} == {None}
    assert errors.pop().startswith(("OSError", "PermissionError"))


def test_the_loop_sends_lanes_side_by_side_and_each_lane_in_order():
    seen, lock = [], threading.Lock()
    gate = threading.Barrier(4, timeout=10)

    def serve(conn):
        with conn:
            first = True
            while data := conn.recv(65536):
                with lock:
                    seen.append(data.rsplit(b"\r\n\r\n", 1)[1])
                if first:   # every lane's first attempt waits for the other lanes' first
                    gate.wait()
                    first = False
                conn.sendall(OK)

    server = _serving(lambda conn, n: serve(conn))
    port = server.getsockname()[1]
    try:
        jobs = [("http", "127.0.0.1", port, "/hook", b"%d" % n, {}, 5.0) for n in range(12)]
        answers = loop_answers(jobs, lanes=4)
        assert [a[1] for a in answers] == [200] * 12
        for lane in range(4):
            assert [b for b in seen if int(b) % 4 == lane] == [b"%d" % n for n in range(lane, 12, 4)]
    finally:
        server.close()


def test_a_kept_alive_connection_the_receiver_closed_is_not_an_attempt_lost():
    # the receiver closes every connection after one answer without saying so (no
    # ``Connection: close``): the next attempt finds the kept one closed and goes on a fresh one
    connections = []
    server = _answering(connections=connections)
    answers = queue.SimpleQueue()
    loop = sender_module.Loop(1, answers.put)
    try:
        for n in range(3):
            loop.submit([(n, "http", "127.0.0.1", server.getsockname()[1], "/hook", b"{}", {}, 5.0)])
            assert answers.get(timeout=10) == (n, 200, None)
            time.sleep(0.1)   # the receiver's close has arrived before the next attempt
    finally:
        loop.close()
        server.close()
    assert len(connections) == 3


def test_a_host_that_needs_a_lookup_is_sent_from_threads_and_answered_through_the_loop(refused):
    # a name lookup blocks: the loop would stop every other lane while it waited
    answers = loop_answers([("http", "name.invalid", 80, "/hook", b"{}", {}, 5.0),
                            ("http", "127.0.0.1", refused, "/hook", b"{}", {}, 5.0)], lanes=2)
    assert answers[0][2].startswith("gaierror") and answers[1][2].startswith("ConnectionRefusedError")


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads Linux /proc")
def test_the_sender_process_sends_from_one_thread(receiver):
    # a thread per attempt cost the child more CPU in hand-overs of its interpreter lock than in
    # the exchanges themselves, CPU taken from the sandbox on a small machine
    sb = sandbox()
    try:
        made = [enqueue(sb, receiver.url + f"/{n}", n=n, subject=f"pay_{n}") for n in range(16)]
        sb.outbox.flush()
        assert all([a["status"] for a in d["attempts"]] == [200] for d in made)
        child = sb.outbox.sender._child
        assert len(os.listdir(f"/proc/{child.pid}/task")) == 2   # reads the sandbox's frames; sends
    finally:
        sb.close()


def test_a_job_the_loop_cannot_start_is_answered_and_the_loop_goes_on(refused):
    # a header name that is not a string, a port out of range, no path: the loop thread died on
    # the first, and every attempt after it (a flush included) waited for ever
    odd = [("http", "127.0.0.1", refused, "/", b"{}", {b"X-Bytes": "v"}, 2.0),
           ("http", "127.0.0.1", 99999, "/", b"{}", {}, 2.0),
           ("http", "127.0.0.1", refused, None, b"{}", {}, 2.0)]
    plain = ("http", "127.0.0.1", refused, "/", b"{}", {}, 2.0)
    answers = queue.SimpleQueue()
    loop = sender_module.Loop(2, answers.put)
    try:
        for n, job in enumerate(odd):
            loop.submit([(2 * n, *job), (2 * n + 1, *plain)])
        recorded = sorted(answers.get(timeout=10) for _ in range(2 * len(odd)))
    finally:
        loop.close()
    assert [a[2].split(":")[0] for a in recorded[0::2]] == ["TypeError", "OverflowError", "TypeError"]
    assert [a[2].split(":")[0] for a in recorded[1::2]] == ["ConnectionRefusedError"] * 3


def test_a_send_that_takes_nothing_on_a_kept_alive_connection_goes_on_when_the_socket_can_take_more(monkeypatch):
    # the first send on a reused connection finds the socket's buffer full: the loop must wait for
    # room to write, not for an answer to a request it never sent
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    paths = []

    def serve():
        conn, _ = server.accept()
        with conn, conn.makefile("rb") as f:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = f.readline()
                    if not line:
                        return
                    head += line
                f.read(2)
                paths.append(head.split(b" ")[1])
                conn.sendall(OK)

    threading.Thread(target=serve, daemon=True).start()

    class FullOnce(socket.socket):
        sends = 0

        def send(self, data, *args):
            if len(data) > 1:   # a request (the loop's wake-ups send one byte)
                FullOnce.sends += 1
                if FullOnce.sends == 2:   # the second request, on the kept-alive connection
                    raise BlockingIOError(11, "Resource temporarily unavailable")
            return super().send(data, *args)

    monkeypatch.setattr(sender_module.socket, "socket", FullOnce)
    answers = queue.SimpleQueue()
    loop = sender_module.Loop(1, answers.put)
    port = server.getsockname()[1]
    try:
        loop.submit([(1, "http", "127.0.0.1", port, "/a", b"{}", {}, 3.0),
                     (2, "http", "127.0.0.1", port, "/b", b"{}", {}, 3.0)])
        assert [answers.get(timeout=10) for _ in range(2)] == [(1, 200, None), (2, 200, None)]
        assert paths == [b"/a", b"/b"]
    finally:
        loop.close()
        server.close()


def test_lanes_sent_by_the_loops_thread_pool_count_against_its_workers():
    # HTTPS and host names go to a thread pool beside the loop: with a pool of its own size beside
    # it, twice ``workers`` lanes were on the wire at once
    busy, peak, lock = [0], [0], threading.Lock()

    def serve(conn):
        with conn:
            while conn.recv(65536):
                with lock:
                    busy[0] += 1
                    peak[0] = max(peak[0], busy[0])
                time.sleep(0.2)
                with lock:
                    busy[0] -= 1
                conn.sendall(OK)

    server = _serving(lambda conn, n: serve(conn))
    port = server.getsockname()[1]
    try:
        jobs = [("http", host, port, "/", b"{}", {}, 5.0) for _ in range(6) for host in ("127.0.0.1", "LOCALHOST")]
        answers = loop_answers(jobs, lanes=12, workers=3)
        assert [a[1] for a in answers] == [200] * 12
        assert peak[0] == 3
    finally:
        server.close()


def _sent(kind: str, port: int, jobs: int, timeout: float = 5.0, pause: float = 0.0) -> list:
    answers = queue.SimpleQueue()
    wire = getattr(sender_module, kind)(1, answers.put)
    try:
        got = []
        for n in range(jobs):
            wire.submit([(n, "http", "127.0.0.1", port, "/hook", b"{}", {}, timeout)])
            got.append(answers.get(timeout=10))
            time.sleep(pause)
        return got
    finally:
        wire.close()


@pytest.mark.parametrize("kind", ["Wire", "Loop"])
def test_informational_answers_before_the_answer_are_skipped(kind):
    # a 103 Early Hints was taken for the answer (a failed attempt), and the real 200 after it for
    # the next attempt's answer on the kept-alive connection
    def handle(conn, n):
        with conn:
            while conn.recv(65536):
                conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK)

    server = _serving(handle)
    try:
        assert _sent(kind, server.getsockname()[1], 3) == [(n, 200, None) for n in range(3)]
    finally:
        server.close()


@pytest.mark.parametrize("kind", ["Wire", "Loop"])
@pytest.mark.parametrize("late", [False, True], ids=["with-the-answer", "while-idle"])
def test_bytes_after_an_answer_are_nobodys_answer(kind, late):
    # a receiver that sends a second answer nobody asked for, with the first or a moment later: it
    # was the next attempt's answer on the kept-alive connection
    connections = []

    def handle(conn, n):
        connections.append(n)
        with conn:
            while conn.recv(65536):
                if late:
                    conn.sendall(OK)
                    time.sleep(0.05)
                    conn.sendall(b"HTTP/1.1 500 Unsolicited\r\nContent-Length: 0\r\n\r\n")
                else:
                    conn.sendall(OK + b"HTTP/1.1 500 Unsolicited\r\nContent-Length: 0\r\n\r\n")

    server = _serving(handle)
    try:
        assert _sent(kind, server.getsockname()[1], 3, pause=0.15) == [(n, 200, None) for n in range(3)]
        assert len(connections) == 3
    finally:
        server.close()


@pytest.mark.parametrize("kind", ["Wire", "Loop"])
def test_the_retry_on_a_fresh_connection_has_what_is_left_of_the_attempts_time(kind):
    # the second request on the kept-alive connection is read, held, and the connection closed
    # without an answer: the one retry may not start a new timeout of its own
    def handle(conn, n):
        with conn:
            for request in itertools.count():
                if not conn.recv(65536):
                    return
                if n == 0 and request == 0:
                    conn.sendall(OK)
                    continue
                time.sleep(0.7)
                return

    server = _serving(handle)
    try:
        answers = queue.SimpleQueue()
        wire = getattr(sender_module, kind)(1, answers.put)
        port = server.getsockname()[1]
        try:
            wire.submit([(1, "http", "127.0.0.1", port, "/", b"{}", {}, 1.0)])
            assert answers.get(timeout=10) == (1, 200, None)
            started = time.monotonic()
            wire.submit([(2, "http", "127.0.0.1", port, "/", b"{}", {}, 1.0)])
            assert answers.get(timeout=10) == (2, None, "TimeoutError: timed out")
            assert time.monotonic() - started < 1.4   # 0.7 s, then the retry's 0.3 s: not 1.7 s
        finally:
            wire.close()
    finally:
        server.close()
