"""A minimal HTTP/1.1 client for webhook attempts: one POST at a time on a kept-alive connection.

The delivery pool shares the interpreter with the request threads, so every attempt's cost comes
out of API throughput. ``http.client`` spends about 100 µs of interpreter time per request, most of
it parsing response headers with the ``email`` package; this client writes the request in one send
and reads only what framing needs (status, Content-Length, Transfer-Encoding, Connection), about a
sixth of that. It refuses what ``http.client`` refuses (illegal header names and values, control
characters in the path) and raises the same exception types, so an attempt's recorded error reads
the same.
"""
from __future__ import annotations

import http.client
import re
import socket

_LEGAL_NAME = re.compile(r"[^:\s][^:\r\n]*")
_ILLEGAL_VALUE = re.compile(r"\n(?![ \t])|\r(?![ \t\n])")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_MAX_LINE = 65536
_MAX_HEADERS = 100


class Connection:
    def __init__(self, scheme: str, host: str, port: int | None) -> None:
        self.scheme, self.host = scheme, host
        self.port = port or (443 if scheme == "https" else 80)
        shown = f"[{host}]" if ":" in host else host
        self._host_header = shown if port in (None, 80 if scheme == "http" else 443) else f"{shown}:{self.port}"
        self._sock: socket.socket | None = None
        self._file = None

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def post(self, path: str, body: bytes, headers: dict, timeout: float) -> tuple[int, bool]:
        """The answer's status, and whether the server closes the connection after it."""
        if _CONTROL.search(path):
            raise http.client.InvalidURL(f"URL can't contain control characters. {path!r}")
        lines = [f"POST {path} HTTP/1.1", f"Host: {self._host_header}", "Accept-Encoding: identity"]
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
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        if self._sock is None:
            self._connect(timeout)
        else:
            self._sock.settimeout(timeout)
        self._sock.sendall(request)
        return self._response()

    def _connect(self, timeout: float) -> None:
        sock = socket.create_connection((self.host, self.port), timeout)
        if self.scheme == "https":
            import ssl
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self._sock, self._file = sock, sock.makefile("rb")

    def _line(self) -> bytes:
        line = self._file.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        return line

    def _response(self) -> tuple[int, bool]:
        while True:
            line = self._line()
            if not line:
                raise http.client.RemoteDisconnected("Remote end closed connection without response")
            parts = line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or len(parts[1]) != 3 or not parts[1].isdigit():
                raise http.client.BadStatusLine(line.decode("latin-1").rstrip())
            status = int(parts[1])
            close = parts[0] == b"HTTP/1.0"
            length, chunked = None, False
            for _ in range(_MAX_HEADERS + 1):
                header = self._line()
                if header in (b"\r\n", b"\n", b""):
                    break
                name, _, value = header.partition(b":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == b"content-length":
                    try:
                        length = int(value)
                    except ValueError:
                        raise http.client.HTTPException(f"invalid Content-Length {value!r}") from None
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value
                elif name == b"connection":
                    close = b"close" in value or (close and b"keep-alive" not in value)
            else:
                raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
            if status != 100:   # 100 Continue: the real answer follows, as http.client reads it
                break
        if status in (204, 304) or 100 <= status < 200:
            return status, close
        if chunked:
            self._skip_chunks()
        elif length is not None:
            self._read(length)
        else:   # the body runs to the end of the connection
            self._file.read()
            close = True
        return status, close

    def _read(self, n: int) -> None:
        data = self._file.read(n)
        if len(data) < n:
            raise http.client.IncompleteRead(data, n - len(data))

    def _skip_chunks(self) -> None:
        while True:
            size_line = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise http.client.IncompleteRead(b"") from None
            if size == 0:
                while self._line() not in (b"\r\n", b"\n", b""):   # trailers
                    pass
                return
            self._read(size + 2)   # the chunk and its CRLF

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None
