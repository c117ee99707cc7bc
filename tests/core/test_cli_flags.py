"""The command line's flags: refused at start in one line with exit status 2 (never a server that
starts and then cannot answer, never a traceback), defaults in --help, a banner that is a URL for
an IPv6 host, and SIGTERM as clean a stop as Ctrl-C."""
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from simulator.testing import ServerProcess, WebhookReceiver

KEY = {"Authorization": "Bearer sk_sbox_" + "a" * 27}
CARD = {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030}


def run(*args, timeout=30, **kw):
    return subprocess.run([sys.executable, "run.py", *args], capture_output=True, text=True, timeout=timeout, **kw)


def refused(result, flag):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("psp-sandbox: "), result.stderr
    assert flag in result.stderr


@pytest.mark.parametrize("args", [
    # waitress took these, printed the banner and never answered ("Task queue depth is 1")
    ("--threads", "0"), ("--threads", "-1"),
    ("--port", "65536"), ("--port", "-1"),
    # int() takes other scripts' digits and underscores: not a number anyone meant to type
    ("--port", "٨٠٨٠"), ("--threads", "1_6"), ("--seed", "1.5"), ("--seed", "9" * 5000),
])
def test_a_bad_number_is_refused_at_start(args):
    refused(run("--port", "0", *args), args[0])


def test_threads_that_cannot_be_started_are_one_line_not_a_traceback():
    # an address space far too small for the threads' stacks: "can't start new thread"
    def small():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    result = run("--port", "0", "--threads", "100000", preexec_fn=small)
    refused(result, "100000 server threads")


@pytest.mark.parametrize("host", ["999.1.1.1", "nosuchhost.invalid", "[::1"])
def test_a_host_that_does_not_resolve_is_one_line_and_the_state_file_untouched(tmp_path, host):
    # it was waitress's "ValueError: Invalid host/port specified." after a traceback, exit status 1
    state = tmp_path / "state.db"
    result = run("--host", host, "--port", "0", "--state", str(state))
    refused(result, f"cannot listen on {host}")
    assert os.listdir(tmp_path) == []


def test_a_port_in_use_leaves_the_state_file_as_a_clean_stop_does(tmp_path):
    state = tmp_path / "state.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("--port", str(port), "--state", str(state))
    refused(result, f"cannot listen on 127.0.0.1:{port}")
    assert os.listdir(tmp_path) == ["state.db"]


def test_help_shows_the_defaults():
    result = run("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for default in ("(default: 127.0.0.1)", "(default: 8080;", "(default: 16)", "else auto)"):
        assert default in text, text


def _ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_an_ipv6_host_is_bracketed_in_the_banner():
    # it printed http://::1:PORT/checkout/, not a URL
    srv = ServerProcess("--host", "::1")
    try:
        srv.wait_ready()   # inside the try: a banner it cannot read must not leave the server running
        assert srv.url == f"http://[::1]:{srv.port}"
        assert requests.get(srv.url + "/_sandbox/health", timeout=5).json()["status"] == "ok"
    finally:
        out = srv.stop()
    lines = out.strip().splitlines()
    assert lines[0].split()[-1] == f"http://[::1]:{srv.port}/checkout/"
    assert lines[-1].split()[-1] == f"http://[::1]:{srv.port}/_sandbox/"
    assert "::1:" not in out.replace("[::1]:", "")


def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    stat = fh.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the sender's pid from /proc")
def test_sigterm_stops_as_cleanly_as_ctrl_c(tmp_path):
    # SIGTERM (kill, docker stop, systemd) killed the process where it stood: FILE-log, FILE-wal and
    # FILE-shm were left beside FILE, the log not applied
    receiver = WebhookReceiver().start()
    folder = tmp_path / "state"
    folder.mkdir()
    state = folder / "state.db"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"webhooks: auto\nproviders:\n  checkout:\n    webhook_url: {receiver.url}/cko\n"
                   "    webhook_signing_key: k\n")
    try:
        srv = ServerProcess("--state", str(state), "--config", str(cfg))
        try:
            srv.wait_ready()
            pay = requests.post(srv.url + "/checkout/payments", headers=KEY, timeout=10,
                                json={"source": CARD, "currency": "EUR", "amount": 1000}).json()
            receiver.wait_for(1)
            sender = _children(srv.proc.pid)   # the webhook sender process
            assert sender
            assert sorted(os.listdir(folder)) != ["state.db"]   # the log is there while it runs
            srv.proc.send_signal(signal.SIGTERM)
            assert srv.proc.wait(timeout=30) == 0
        finally:
            srv.stop()
    finally:
        receiver.stop()
    assert os.listdir(folder) == ["state.db"]
    assert not [pid for pid in sender if os.path.exists(f"/proc/{pid}")]
    assert "Traceback" not in "".join(srv._err)
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
        assert db.execute("SELECT count(*) FROM objects WHERE id = ?", (pay["id"],)).fetchone() == (1,)
    db.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_does_not_wait_out_an_injected_delay(tmp_path, signum):
    # waitress waits up to 5 s for requests under way: a scenario's 60 s delay held every stop
    # (a test's teardown, docker stop) for those 5 s, then left the request unanswered
    scenario = tmp_path / "slow.yaml"
    scenario.write_text("name: slow\nrules:\n  - name: slow\n    provider: checkout\n    effect: {latency_ms: 60000}\n")
    srv = ServerProcess("--scenario", str(scenario))
    try:
        srv.wait_ready()
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(requests.post, srv.url + "/checkout/payments", headers=KEY, timeout=90,
                               json={"source": CARD, "currency": "EUR", "amount": 1000})
            while not requests.get(srv.url + "/_sandbox/scenarios", timeout=10).json()["scenarios"][0]["rules"][0]["hits"]:
                time.sleep(0.01)   # until the request is in, waiting out its delay
            stopping = time.monotonic()
            srv.proc.send_signal(signum)
            assert srv.proc.wait(timeout=30) == 0
            assert time.monotonic() - stopping < 4, "the stop waited for the delayed request"
            assert slow.result().status_code == 503   # not processed, and told so
    finally:
        srv.stop()
    assert "Traceback" not in "".join(srv._err)


def _malloc_arenas(pid: int) -> int:
    """glibc's arenas besides the main one: each reserves a 64 MiB aligned region (a readable part
    in use and the rest reserved, side by side in /proc/PID/maps)."""
    size = 64 << 20
    regions = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) == 5:   # anonymous
                start, end = (int(x, 16) for x in fields[0].split("-"))
                regions.append((start, end, fields[1]))
    arenas = 0
    for i, (start, end, perms) in enumerate(regions):
        if start % size == 0 and perms.startswith("rw"):
            tail = regions[i + 1] if i + 1 < len(regions) else None
            whole = end if tail is None or tail[0] != end else tail[1]
            arenas += whole - start == size
    return arenas


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                    reason="glibc's arenas")
def test_the_server_keeps_to_two_malloc_arenas_whatever_its_threads(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    srv = ServerProcess("--threads", "16").wait_ready()
    try:
        # each answer (about 1.5 KB) is a block larger than Python's own allocator serves
        body = {"source": CARD, "amount": 1000, "currency": "EUR"}

        def pay(_):
            with requests.Session() as http:
                for _ in range(20):
                    assert http.post(f"{srv.url}/checkout/payments", json=body, headers=KEY, timeout=30).status_code == 201
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(pay, range(16)))
        assert _malloc_arenas(srv.proc.pid) <= 1
    finally:
        srv.stop()
