"""A 30-day clock advance over many failing webhook deliveries. Prints figures; asserts nothing.

Every delivery is refused by a loopback receiver (a separate process answering 500 on kept-alive
connections), so each runs through Checkout's whole retry schedule: 9 attempts, each at its own
virtual instant. Target on a 2-core machine: 10,000 deliveries (~90,000 attempts) in <= 60 s.

    python benchmarks/bench_outbox.py [--deliveries 10000] [--workers 8]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simulator import create_app  # noqa: E402
from simulator.testing import free_port  # noqa: E402

RECEIVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Refuse(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as a real receiver would

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Refuse).serve_forever()
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    try:
        app = create_app({"seed": 1, "clock": {"start": "2026-01-01T00:00:00Z"}, "webhooks": "manual",
                          "providers": {"checkout": {"webhook_signing_key": "k"}}})
        sb = app.extensions["sandbox"]
        sb.outbox.sender.workers = args.workers   # threads of the sender process
        sb.outbox.limit = args.deliveries  # keep every delivery so its attempts can be counted
        schedule = sb.providers["checkout"].webhook_schedule
        time.sleep(0.5)  # the receiver's socket
        started = time.perf_counter()
        for n in range(args.deliveries):
            sb.outbox.enqueue(provider="checkout", tenant="bench", event_type="payment_approved",
                              url=f"http://127.0.0.1:{port}/hook", body=b'{"n": %d}' % n, schedule=schedule)
        enqueued = time.perf_counter() - started
        started = time.perf_counter()
        sb.advance(timedelta(days=30))
        elapsed = time.perf_counter() - started
        attempts = sum(len(d["attempts"]) for d in sb.outbox.list())
        dead = sum(d["status"] == "dead" for d in sb.outbox.list())
        sb.close()
    finally:
        receiver.terminate()
        receiver.wait()
    print(f"deliveries enqueued:     {args.deliveries:>8}   in {enqueued:6.2f} s")
    print(f"attempts in the advance: {attempts:>8}   ({dead} deliveries dead at the end)")
    print(f"30-day advance:          {elapsed:8.2f} s   ({attempts / elapsed:,.0f} attempts/s, "
          f"{args.workers} workers)")


if __name__ == "__main__":
    main()
