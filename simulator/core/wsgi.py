"""HTTP-layer effects that Flask cannot express: closing the connection without a response.

A dropped connection must look to the client like a network failure (``requests`` raises
``ConnectionError``), so the socket is shut down before any byte of a response is written. The
socket is reached through the server's own environ entries: waitress exposes its channel through
``waitress.client_disconnected``; gunicorn exposes ``gunicorn.socket``.
"""
from __future__ import annotations

import socket

DROP_KEY = "sandbox.drop_connection"


class _Dropped(Exception):
    pass


def _server_socket(environ):
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        return sock
    probe = environ.get("waitress.client_disconnected")
    channel = getattr(probe, "__self__", None)
    return getattr(channel, "socket", None)


class ConnectionDropper:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        result = self.app(environ, start_response)
        if not environ.get(DROP_KEY):
            return result
        if hasattr(result, "close"):
            result.close()
        sock = _server_socket(environ)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            from waitress.channel import ClientDisconnected
        except ImportError:  # another server: any exception before the first byte closes it
            raise _Dropped("connection dropped by scenario") from None
        raise ClientDisconnected("connection dropped by scenario")
