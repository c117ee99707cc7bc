"""The ceiling: a bare Flask "hello" app on the same waitress server, threads and flags as run.py.

    python benchmarks/bare_app.py --port 8081
"""
import argparse

from flask import Flask
from waitress import serve

app = Flask(__name__)


@app.get("/")
def hello():
    return "hello"


@app.get("/_sandbox/health")
def health():
    # the same path the start-up benchmark polls on the sandbox
    return {"status": "ok"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    serve(app, host="127.0.0.1", port=args.port, threads=args.threads,
          clear_untrusted_proxy_headers=False, ident="bare-flask")   # as run.py
