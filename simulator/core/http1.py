"""A minimal HTTP/1.1 client for webhook attempts: one POST at a time on a kept-alive connection.

The delivery pool shares the interpreter with the request threads, so every attempt's cost comes
out of API throughput. ``http.client`` spends about 100 µs of interpreter time per request, most of
it parsing response headers with the ``email`` package; this client writes the request in one send
and reads only what framing needs (status, Content-Length, Transfer-Encoding, Connection), about a
sixth of that. It refuses what ``http.client`` refuses (illegal header names and values, control
characters in the path) and raises the same exception types, so an attempt's recorded error reads
the same.

``timeout`` bounds the whole attempt, from connecting to the answer's last byte: a socket's own
timeout bounds each read, and a receiver that trickles its answer a byte at a time would hold an
attempt (and a sending worker) for as long as it likes.
"""
from __future__ import annotations

import http.client
import re
import select
import socket
import time

_LEGAL_NAME = re.compile(r"[^:\s][^:\r\n]*")
_ILLEGAL_VALUE = re.compile(r"\n(?![ \t])|\r(?![ \t\n])")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_MAX_LINE = 65536
_MAX_HEADERS = 100


def host_header(scheme: str, host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port in (None, 80 if scheme == "http" else 443) else f"{shown}:{port}"


def request(host: str, path: str, body: bytes, headers: dict) -> bytes:
    """The bytes of a POST, sent in one write; refuses what ``http.client`` refuses, as it does."""
    if _CONTROL.search(path):
        raise http.client.InvalidURL(f"URL can't contain control characters. {path!r}")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity"]
    lowered = set()
    for name, value in headers.items():
        value = str(value)
        if not _LEGAL_NAME.fullmatch(name):
            raise ValueError(f"Invalid header name {name!r}")
        if _ILLEGAL_VALUE.search(value):
            raise ValueError(f"Invalid header value {value!r}")
        lines.append(f"{name}: {value}")
        lowered.add(name.lower())
    if "content-length" not in lowered:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class AnswerReader:
    """The framing of one answer, read from bytes as they arrive: ``start`` and then ``feed`` give
    (status, whether the server closes the connection) once the answer is whole, None while more is
    needed; what follows the answer stays in ``buffer``. A blocking connection feeds it from
    ``recv``, the sender's event loop from whatever a socket has ready, so both read an answer the
    same way and raise the same errors."""

    def __init__(self, buffer: bytes = b"") -> None:
        self.buffer = buffer
        self.eof = False
        self._steps = self._answer()

    def start(self) -> tuple[int, bool] | None:
        return self._step()

    def feed(self, data: bytes) -> tuple[int, bool] | None:
        """What the receiver sent next; b"" when the connection ended."""
        if data:
            self.buffer += data
        else:
            self.eof = True
        return self._step()

    def _step(self):
        try:
            next(self._steps)
        except StopIteration as done:
            return done.value
        return None

    # each ``yield`` waits for the next ``feed``
    def _line(self):
        while (end := self.buffer.find(b"\n")) < 0:
            if len(self.buffer) > _MAX_LINE:
                raise http.client.LineTooLong("header line")
            if self.eof:
                line, self.buffer = self.buffer, b""
                return line
            yield
        if end >= _MAX_LINE:
            raise http.client.LineTooLong("header line")
        line, self.buffer = self.buffer[:end + 1], self.buffer[end + 1:]
        return line

    def _answer(self):
        while True:
            line = yield from self._line()
            if not line:
                raise http.client.RemoteDisconnected("Remote end closed connection without response")
            parts = line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or len(parts[1]) != 3 or not parts[1].isdigit():
                raise http.client.BadStatusLine(line.decode("latin-1").rstrip())
            status = int(parts[1])
            close = parts[0] == b"HTTP/1.0"
            length, chunked = None, False
            for _ in range(_MAX_HEADERS + 1):
                header = yield from self._line()
                if header in (b"\r\n", b"\n", b""):
                    break
                name, _, value = header.partition(b":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == b"content-length":
                    try:
                        length = int(value)
                    except ValueError:
                        raise http.client.HTTPException(f"invalid Content-Length {value!r}") from None
                    if length < 0:   # as http.client does: nonsense, the body runs to the close
                        length = None
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value
                elif name == b"connection":
                    close = b"close" in value or (close and b"keep-alive" not in value)
            else:
                raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
            # an informational answer (100 Continue, 103 Early Hints...) comes before the real one;
            # http.client skips only 100, and took a 103 for the answer and the real one for the next
            if not 100 <= status < 200 or status == 101:
                break
        if status in (204, 304) or 100 <= status < 200:
            return status, close
        if chunked:
            yield from self._skip_chunks()
        elif length is not None:
            yield from self._read(length)
        else:   # the body runs to the end of the connection
            while not self.eof:
                self.buffer = b""
                yield
            self.buffer = b""
            close = True
        return status, close

    def _read(self, n: int):
        """Skip ``n`` bytes of body, a buffer at a time: nothing of it is kept."""
        left = n
        while len(self.buffer) < left:
            left -= len(self.buffer)
            self.buffer = b""
            if self.eof:
                # http.client's message counts what was read ("5 bytes read, 5 more expected")
                raise http.client.IncompleteRead(bytes(n - left), left)
            yield
        self.buffer = self.buffer[left:]

    def _skip_chunks(self):
        while True:
            size_line = (yield from self._line()).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise http.client.IncompleteRead(b"") from None
            if size == 0:
                while (yield from self._line()) not in (b"\r\n", b"\n", b""):   # trailers
                    pass
                return
            yield from self._read(size + 2)   # the chunk and its CRLF


class Connection:
    def __init__(self, scheme: str, host: str, port: int | None) -> None:
        self.scheme, self.host = scheme, host
        self.port = port or (443 if scheme == "https" else 80)
        self._host_header = host_header(scheme, host, port)
        self._sock: socket.socket | None = None
        self._deadline = 0.0    # when the attempt under way runs out of time (time.monotonic)
        self.answered = False   # whether any byte of an answer to the last request arrived

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def post(self, path: str, body: bytes, headers: dict, timeout: float) -> tuple[int, bool]:
        """The answer's status, and whether the connection cannot carry another request (the
        server closes it, or sent more than the answer)."""
        data = request(self._host_header, path, body, headers)
        self._deadline = time.monotonic() + timeout
        self.answered = False
        if self._sock is not None and select.select([self._sock], [], [], 0)[0]:
            # readable while idle: closed by the receiver, or carrying bytes nobody asked for
            self.close()
        if self._sock is None:
            self._connect(timeout)
        self._sock.settimeout(self._left())
        self._sock.sendall(data)
        reader = AnswerReader()
        answer = reader.start()
        while answer is None:
            self._sock.settimeout(self._left())
            received = self._sock.recv(65536)
            self.answered = self.answered or bool(received)
            answer = reader.feed(received)
        status, close = answer
        return status, close or bool(reader.buffer)

    def _connect(self, timeout: float) -> None:
        sock = socket.create_connection((self.host, self.port), timeout)
        if self.scheme == "https":
            import ssl
            sock.settimeout(self._left())
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self._sock = sock

    def _left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")   # what a socket's own timeout raises
        return left

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
