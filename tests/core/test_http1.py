"""The webhook client against receivers that frame their answers every way HTTP/1.x allows."""
import http.client
import socket
import threading
import time

import pytest

from simulator.core import http1


class RawReceiver:
    """Answers each request on a connection with the next canned bytes; records what it read.
    ``trickle``: send each answer two bytes at a time, that many seconds apart."""

    def __init__(self, answers: list[bytes], close_after: int | None = None, trickle: float | None = None):
        self.answers, self.close_after, self.trickle = list(answers), close_after, trickle
        self.stop = threading.Event()
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while self.answers:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn, conn.makefile("rb") as f:
                served = 0
                while self.answers and (self.close_after is None or served < self.close_after):
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = f.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                      if line.lower().startswith(b"content-length")))
                    self.requests.append(head + f.read(length))
                    self._send(conn, self.answers.pop(0))
                    served += 1

    def _send(self, conn, answer: bytes):
        if self.trickle is None:
            conn.sendall(answer)
            return
        for at in range(0, len(answer), 2):
            if self.stop.wait(self.trickle):
                return
            try:
                conn.sendall(answer[at:at + 2])
            except OSError:
                return

    def close(self):
        self.stop.set()
        self.sock.close()


def post(receiver, conn=None, headers=None):
    conn = conn or http1.Connection("http", "127.0.0.1", receiver.port)
    return conn, conn.post("/hook?x=1", b'{"a":1}', headers or {"Content-Type": "application/json"}, 5)


@pytest.mark.parametrize("answer, status, close", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, False),
    (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nok\r\n1\r\n!\r\n0\r\nTrailer: t\r\n\r\n", 202,
     False),
    (b"HTTP/1.1 204 No Content\r\n\r\n", 204, False),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 201, False),
    (b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbad", 500, True),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, True),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 200, False),
    (b"HTTP/1.1 200 OK\r\n\r\nbody until the connection closes", 200, True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nbody until the connection closes", 200, True),
])
def test_framing(answer, status, close):
    receiver = RawReceiver([answer], close_after=1)
    try:
        conn, result = post(receiver)
        assert result == (status, close)
        request = receiver.requests[0]
        assert request.startswith(b"POST /hook?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % receiver.port)
        assert b"\r\nContent-Length: 7\r\n" in request and request.endswith(b'\r\n\r\n{"a":1}')
        conn.close()
    finally:
        receiver.close()


def test_kept_alive_connection_is_reused_for_the_next_attempt():
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    receiver = RawReceiver([ok, ok, ok])
    try:
        conn, first = post(receiver)
        for _ in range(2):
            assert post(receiver, conn)[1] == (200, False)
        assert receiver.connections == 1 and len(receiver.requests) == 3
        conn.close()
    finally:
        receiver.close()


@pytest.mark.parametrize("answer, error", [
    (b"", http.client.RemoteDisconnected),
    (b"SPAM\r\n\r\n", http.client.BadStatusLine),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", http.client.IncompleteRead),
    (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", http.client.HTTPException),
])
def test_broken_answers_raise_what_http_client_raises(answer, error):
    receiver = RawReceiver([answer], close_after=1)
    try:
        with pytest.raises(error):
            post(receiver)
    finally:
        receiver.close()


@pytest.mark.parametrize("headers, path", [
    ({"X-Sig": "a\r\nInjected: 1"}, "/hook"),
    ({"Bad:Name": "v"}, "/hook"),
    ({"X-Sig": "v"}, "/hook\r\nInjected: 1"),
])
def test_refuses_what_http_client_refuses(headers, path):
    conn = http1.Connection("http", "127.0.0.1", 9)
    with pytest.raises(ValueError if path == "/hook" else http.client.InvalidURL):
        conn.post(path, b"", headers, 1)
    assert not conn.connected   # refused before connecting


def test_refused_connection_is_an_os_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        http1.Connection("http", "127.0.0.1", port).post("/", b"", {}, 1)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200 + b"\r\nContent-Length: 0\r\n\r\n",   # a header
    b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + b"b" * 200,                   # the body
    b"HTTP/1.1 200 OK\r\n\r\n" + b"c" * 200,                                          # to the close
], ids=["header", "body", "until-close"])
def test_the_timeout_bounds_the_whole_attempt_not_each_read(answer):
    # ~100 pauses of 0.1 s: ten seconds of answer, each read waiting a tenth of the timeout
    receiver = RawReceiver([answer], close_after=1, trickle=0.1)
    conn = http1.Connection("http", "127.0.0.1", receiver.port)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="timed out"):
            conn.post("/hook", b"{}", {}, 1.0)
        assert time.monotonic() - started < 2.5
    finally:
        conn.close()
        receiver.close()
