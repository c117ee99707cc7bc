"""Command line: ``python run.py``, ``python -m simulator`` and the ``psp-sandbox`` script."""
from __future__ import annotations

import argparse
import ctypes
import ipaddress
import logging
import os
import re
import signal
import socket
import sys

from .core.documents import DocumentError
from .core.state import StateError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, nothing served
        sys.stderr.write(f"psp-sandbox: {message}\n")
        sys.exit(2)


def _integer(low: int | None = None, high: int | None = None):
    """An argparse type: an integer in ASCII digits (``int()`` takes any script's digits, spaces and
    underscores) within ``low``..``high``; anything else is refused at start, not by the server."""
    if high is not None:
        wanted = f"an integer from {low} to {high}"
    elif low is not None:
        wanted = f"an integer of at least {low}"
    else:
        wanted = "an integer"

    def parse(text: str) -> int:
        # int() refuses more than 4,300 digits with a ValueError of its own: check the length first
        if len(text) > 4300 or not re.fullmatch(r"-?[0-9]+", text):
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {text!r}")
        value = int(text)
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {text!r}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="psp-sandbox", description="Local simulator of payment providers' recurring-payment APIs")
    p.add_argument("--host", default="127.0.0.1",
                   help="address or host name to listen on (default: %(default)s); anything but loopback "
                        "exposes the unauthenticated admin API")
    p.add_argument("--port", type=_integer(0, 65535), default=8080,
                   help="port to listen on (default: %(default)s; 0 picks a free port)")
    p.add_argument("--config", metavar="FILE", help="config document (YAML or JSON)")
    p.add_argument("--scenario", metavar="FILE", action="append", default=[], help="scenario document; repeatable")
    p.add_argument("--seed", type=_integer(), metavar="N",
                   help="seed for ids and random draws (default: the config's seed)")
    p.add_argument("--state", metavar="FILE", help="persist the runtime to this SQLite file (locked to one process)")
    p.add_argument("--webhooks", choices=["auto", "manual"],
                   help="auto: background delivery; manual: only on flush or clock advance "
                        "(default: the config's webhooks, else auto)")
    p.add_argument("--threads", type=_integer(1), default=16, metavar="N",
                   help="server worker threads (default: %(default)s)")
    return p


def loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bare(host: str) -> str:
    """The host as waitress resolves it: an IPv6 address may come in brackets."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _authority(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets (RFC 3986; a zone's % as %25, RFC 6874)."""
    host = _bare(host)
    if ":" in host and not host.startswith("["):   # (a "[" left is a bracket not closed: as typed)
        host = "[" + host.replace("%", "%25") + "]"
    return f"{host}:{port}"


def base_url(host: str, port: int) -> str:
    return f"http://{_authority(host, port)}"


def _unresolvable(host: str, port: int) -> str | None:
    """Why waitress could not listen on ``host`` (its own error is a bare ValueError, after a
    traceback), or None. Asked as waitress asks, before the app (and a state file) is opened."""
    name = _bare(host)
    try:
        socket.getaddrinfo(None if name == "*" else name, port, socket.AF_UNSPEC, socket.SOCK_STREAM,
                           socket.IPPROTO_TCP, socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:   # gaierror; a label too long for IDNA
        return getattr(exc, "strerror", None) or str(exc)
    return None


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


def _stop_on_signal(sandbox):
    """A SIGTERM (what docker, systemd and kill(1) send) and SIGINT (Ctrl-C) handler: waitress stops
    serving on KeyboardInterrupt, waiting up to 5 s for requests under way, and ``main`` closes the
    sandbox (a state file's log applied and removed). A scenario's injected delay ends at once
    instead of holding that wait. Only the first signal does this: a second must not cut the stop
    short. (Not SIG_IGN for the rest: an ignored signal stays ignored in a child started after it.)"""
    stopping = []

    def handler(signum, frame):
        if not stopping:
            stopping.append(signum)
            sandbox.closing.set()
            raise KeyboardInterrupt
    return handler


# glibc's mallopt parameter: how many malloc arenas the process may create
_M_ARENA_MAX = -8


def fewer_malloc_arenas(most: int = 2) -> bool:
    """Let glibc's malloc use at most ``most`` arenas, unless MALLOC_ARENA_MAX says otherwise; False
    where there is no glibc. By default every thread that allocates a large block while another
    holds an arena gets an arena of its own (up to eight per core): sixteen request threads spread a
    payment's larger allocations over as many heaps, each keeping its own free space. Two arenas
    left ~1.8 KB of RSS per keyed Checkout payment against 1.9-2.0 KB, in repeated runs, with no
    measurable cost to throughput (every request thread allocates under Python's interpreter lock,
    so they seldom wait for an arena). Called before any thread starts: arenas are never given back."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):   # not glibc (macOS has no mallopt)
        return False
    return mallopt(_M_ARENA_MAX, most) == 1


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    fewer_malloc_arenas()
    problem = _unresolvable(args.host, args.port)
    if problem:
        sys.stderr.write(f"psp-sandbox: cannot listen on {_authority(args.host, args.port)}: {problem}\n")
        return 2
    try:
        app = make_app(args)
    except (DocumentError, StateError) as exc:
        sys.stderr.write(f"psp-sandbox: {exc}\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"psp-sandbox: {args.state or ''}: {exc}\n")
        return 2
    sandbox = app.extensions["sandbox"]

    if not loopback(args.host):
        sys.stderr.write(f"psp-sandbox: warning: listening on {args.host}: the admin API (/_sandbox) has no "
                         "authentication; anyone who can reach this port can reset, configure and drive it\n")
        sys.stderr.flush()
    from waitress import create_server
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        # proxy headers reach the app: Gr4vy takes the buyer's IP from X-Forwarded-For (a call made
        # server-side). No proxy is trusted, so waitress changes nothing it reports from them.
        server = create_server(app, host=args.host, port=args.port, threads=args.threads,
                               clear_untrusted_proxy_headers=False, ident="psp-sandbox")
    except (OSError, ValueError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError):   # the threads could not all be started
            reason = f"cannot start {args.threads} server threads: {exc}"
        else:
            reason = f"cannot listen on {_authority(args.host, args.port)}: {getattr(exc, 'strerror', None) or exc}"
        sys.stderr.write(f"psp-sandbox: {reason}\n")
        sandbox.close()   # nothing was served: a state file is left as a clean stop leaves it
        return 2
    # a name with several addresses (localhost as 127.0.0.1 and ::1) gives one server per address
    port = getattr(server, "effective_port", None)
    if port is None:
        port = server.effective_listen[0][1]
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop_on_signal(sandbox))
    try:
        base = base_url(args.host, port)
        for provider in sandbox.providers.values():
            for line in provider.startup_lines(base):
                print(line)
        print(f"{'Dashboard':<13} {base}/_sandbox/")
        sys.stdout.flush()
        sandbox.start_dispatcher()
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.close()
    return 0
