"""Command line: ``python run.py``, ``python -m simulator`` and the ``psp-sandbox`` script."""
from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

from .core.documents import DocumentError
from .core.state import StateError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, nothing served
        sys.stderr.write(f"psp-sandbox: {message}\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="psp-sandbox", description="Local simulator of payment providers' recurring-payment APIs")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--config", metavar="FILE", help="config document (YAML or JSON)")
    p.add_argument("--scenario", metavar="FILE", action="append", default=[], help="scenario document; repeatable")
    p.add_argument("--seed", type=int, help="seed for ids and random draws")
    p.add_argument("--state", metavar="FILE", help="persist the runtime to this SQLite file (locked to one process)")
    p.add_argument("--webhooks", choices=["auto", "manual"])
    p.add_argument("--threads", type=int, default=16, help="server worker threads")
    return p


def loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def make_app(args):
    from . import create_app
    from .config import Config
    config = Config.from_file(args.config) if args.config else Config.from_document({})
    overrides = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.webhooks:
        overrides["webhooks"] = args.webhooks
    if overrides:
        config = config.merged(overrides, "<command line>")
    return create_app(config, state_path=args.state, scenario_files=args.scenario)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        sys.stderr.write(f"psp-sandbox: --port must be 0-65535, not {args.port}\n")
        return 2
    try:
        app = make_app(args)
    except (DocumentError, StateError) as exc:
        sys.stderr.write(f"psp-sandbox: {exc}\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"psp-sandbox: {args.state or ''}: {exc}\n")
        return 2

    if not loopback(args.host):
        sys.stderr.write(f"psp-sandbox: warning: listening on {args.host}: the admin API (/_sandbox) has no "
                         "authentication; anyone who can reach this port can reset, configure and drive it\n")
        sys.stderr.flush()
    from waitress import create_server
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        server = create_server(app, host=args.host, port=args.port, threads=args.threads,
                               clear_untrusted_proxy_headers=True, ident="psp-sandbox")
    except OSError as exc:
        sys.stderr.write(f"psp-sandbox: cannot listen on {args.host}:{args.port}: {exc.strerror}\n")
        return 2
    sandbox = app.extensions["sandbox"]
    base = f"http://{args.host}:{server.effective_port}"
    for provider in sandbox.providers.values():
        for line in provider.startup_lines(base):
            print(line)
    print(f"{'Dashboard':<13} {base}/_sandbox/")
    sys.stdout.flush()
    sandbox.start_dispatcher()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.close()
    return 0
