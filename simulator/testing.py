"""Test helpers and pytest plugin: real servers on 127.0.0.1, webhook receivers, admin client.

``pytest -p simulator.testing`` (pyproject sets it) gives fixtures ``server`` (a fresh in-process
sandbox with manual webhooks and a frozen clock) and ``receiver`` (a loopback webhook receiver).
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

DEFAULT_START = "2026-01-01T00:00:00Z"


class SandboxServer:
    """A sandbox app served by waitress on an ephemeral loopback port, in this process."""

    def __init__(self, config: dict | None = None, *, scenario_files=None, state_path=None, threads: int = 16,
                 extra_providers=None):
        from waitress import create_server

        from . import create_app
        self.app = create_app(config or {}, scenario_files=scenario_files, state_path=state_path,
                              extra_providers=extra_providers)
        self.sandbox = self.app.extensions["sandbox"]
        # as run.py serves it: proxy headers (X-Forwarded-For) reach the app
        self._server = create_server(self.app, host="127.0.0.1", port=0, threads=threads,
                                     clear_untrusted_proxy_headers=False)
        self.port = self._server.effective_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        # waitress's own run() cannot be stopped from another thread without racing its select();
        # step its loop here and close everything from this thread once asked to stop. The short
        # step bounds what stop() waits for; waking the loop through waitress's trigger instead
        # met an already closed trigger descriptor now and then, and writing to a descriptor
        # that may have been reused is worse than 10 ms.
        server = self._server
        while not self._stopping.is_set():
            server.asyncore.loop(timeout=0.01, map=server._map, use_poll=True, count=1)
        server.task_dispatcher.shutdown(timeout=5)
        for channel in list(server._map.values()):
            channel.close()

    def start(self) -> "SandboxServer":
        self._thread.start()
        self.sandbox.start_dispatcher()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        self.sandbox.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # admin conveniences (plain HTTP, the same as any user)
    def admin(self, method: str, path: str, **kw):
        resp = requests.request(method, f"{self.url}/_sandbox{path}", timeout=30, **kw)
        return resp

    def advance(self, duration: str, tenant: str | None = None) -> dict:
        body = {"advance": duration}
        if tenant:
            body["tenant"] = tenant
        resp = self.admin("POST", "/clock", json=body)
        resp.raise_for_status()
        return resp.json()

    def webhooks(self, **params) -> list[dict]:
        return self.admin("GET", "/webhooks", params=params).json()["webhooks"]

    def flush(self) -> list[dict]:
        return self.admin("POST", "/webhooks/flush").json()["attempted"]

    def journal(self, **params) -> list[dict]:
        return self.admin("GET", "/requests", params=params).json()["requests"]

    def hosted(self, provider: str, object_id: str, **action):
        return self.admin("POST", f"/hosted/{provider}/{object_id}", json=action)


class ReceiverServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with room for the connections a sandbox opens at once.

    The sender opens a connection per lane in flight, tens at a time under a burst; socketserver
    listens with a backlog of 5, and the kernel drops the connections beyond it, which the sender's
    TCP stack retries a second later: a test waiting for twenty webhooks waited two seconds."""

    request_queue_size = 128
    daemon_threads = True


class WebhookReceiver:
    """A loopback HTTP server that records every POST and answers with ``status``."""

    def __init__(self, status: int = 200):
        self.status = status
        self.requests: list[dict] = []
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    receiver._lock.notify_all()
                    status = receiver.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ReceiverServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # stop() waits for serve_forever to notice, one poll interval at most: keep it short so a
        # test's teardown does not idle for the default half second
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def json(self) -> list:
        with self._lock:
            return [json.loads(r["body"]) for r in self.requests]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        with self._lock:
            if self._lock.wait_for(lambda: len(self.requests) >= count, timeout):
                return list(self.requests)
        raise AssertionError(f"expected {count} webhook(s), got {len(self.requests)}")


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


_next_port = None
_port_lock = threading.Lock()


def free_port() -> int:
    """A loopback port free now, for a server that binds it a moment later (a process started
    with ``--port``, a restart on the same port).

    A port the kernel hands out for ``bind(0)`` can be handed to another test process (xdist runs
    several, each binding ephemeral ports all the time) before the server binds it. Ports are
    taken from below the kernel's ephemeral range instead, which ``bind(0)`` never hands out, in a
    block of a thousand per test process; where there is no such room, the kernel chooses."""
    global _next_port
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    block = 20_000 + 1_000 * (int(worker) % 10 if worker.isdigit() else 0)
    if block + 1_000 <= _ephemeral_low():
        with _port_lock:
            for _ in range(1_000):
                if _next_port is None or not block <= _next_port < block + 1_000:
                    _next_port = block + os.getpid() % 1_000   # another run beside this one starts elsewhere
                port, _next_port = _next_port, _next_port + 1
                with socket.socket() as s:
                    try:
                        s.bind(("127.0.0.1", port))
                    except OSError:
                        continue
                return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def refused_port():
    """A loopback port that refuses connections for as long as the block runs: its socket is
    bound and never listens, so no server can take the port meanwhile, as one can take a port that
    was merely free when chosen, and a connection meant to be refused would reach it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


class ServerProcess:
    """``python run.py`` in a subprocess, for tests of the command line itself.

    Without ``port`` it listens on ``--port 0`` and the port is read from the dashboard line it
    prints, so parallel test runs never race for a port."""

    def __init__(self, *args: str, cwd: str | None = None, port: int | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}" if port else None
        root = cwd or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.proc = subprocess.Popen([sys.executable, "run.py", "--port", str(port or 0), *args], cwd=root,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # both pipes drained all along, so a chatty server never blocks on a full pipe
        self._out: list[str] = []
        self._err: list[str] = []
        self._listening = threading.Event()
        self._readers = [threading.Thread(target=self._drain, args=(self.proc.stdout, self._out), daemon=True),
                         threading.Thread(target=self._drain, args=(self.proc.stderr, self._err), daemon=True)]
        for reader in self._readers:
            reader.start()

    def _drain(self, pipe, lines: list[str]) -> None:
        for line in pipe:
            lines.append(line)
            if line.startswith("Dashboard"):
                # http://127.0.0.1:PORT/_sandbox/, or http://[::1]:PORT/_sandbox/ for an IPv6 host
                banner = urllib.parse.urlsplit(line.split()[-1])
                self.port = banner.port
                self.url = f"{banner.scheme}://{banner.netloc}"
                self._listening.set()
        self._listening.set()   # the process is gone: wait_ready reports why

    def wait_ready(self, timeout: float = 20.0) -> "ServerProcess":
        deadline = time.monotonic() + timeout
        self._listening.wait(timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._readers[1].join(timeout=5)
                raise AssertionError(f"server exited {self.proc.returncode}: {''.join(self._err)}")
            try:
                if self.url:
                    requests.get(self.url + "/_sandbox/health", timeout=1)
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.01)
        raise AssertionError("server did not start")

    def kill9(self) -> None:
        """SIGKILL: no clean shutdown, only what a crash leaves behind (a state file's committed rows)."""
        self.proc.kill()
        self.proc.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=5)

    def stop(self) -> str:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        return "".join(self._out)


@pytest.fixture
def server():
    """A fresh sandbox: frozen clock at 2026-01-01, seed 1, webhooks delivered on flush/advance."""
    srv = SandboxServer({"seed": 1, "clock": {"start": DEFAULT_START}, "webhooks": "manual"}).start()
    yield srv
    srv.stop()


@pytest.fixture
def receiver():
    rcv = WebhookReceiver().start()
    yield rcv
    rcv.stop()
