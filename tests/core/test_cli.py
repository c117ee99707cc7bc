"""The command line: start-up lines, one-line errors naming file and line, exit status 2."""
import marshal
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import zlib

import pytest
import requests

from simulator.testing import ServerProcess


def run(*args, timeout=30):
    return subprocess.run([sys.executable, "run.py", *args], capture_output=True, text=True, timeout=timeout)


def test_start_prints_every_provider_and_the_dashboard():
    srv = ServerProcess().wait_ready()
    try:
        health = requests.get(srv.url + "/_sandbox/health", timeout=5).json()
        assert health["status"] == "ok"
        # waitress, not the Flask development server
        assert requests.get(srv.url + "/_sandbox/health", timeout=5).headers["Server"] == "psp-sandbox"
    finally:
        out = srv.stop()
    lines = out.strip().splitlines()
    for name in health["providers"]:
        assert any(f"{srv.url}/{name}/" in line for line in lines), (name, out)
    assert f"{srv.url}/_sandbox/" in lines[-1]


def test_unknown_flag_is_one_line_exit_2():
    result = run("--bogus")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--bogus" in result.stderr


def test_unreadable_config_names_the_file(tmp_path):
    result = run("--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "missing.yaml" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_invalid_config_names_file_and_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("seed: 1\nwebhooks: auto\nproviders:\n  checkout:\n    secret_kyes: [x]\n")
    result = run("--config", str(cfg))
    assert result.returncode == 2
    assert f"{cfg}:5:" in result.stderr and "secret_kyes" in result.stderr


def test_malformed_config_yaml_names_the_line(tmp_path):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("seed: 1\nclock: {start: \n  - [\n")
    result = run("--config", str(cfg))
    assert result.returncode == 2 and f"{cfg}:" in result.stderr and "malformed YAML" in result.stderr


def test_bad_clock_start_is_rejected(tmp_path):
    cfg = tmp_path / "clock.yaml"
    cfg.write_text("clock:\n  start: yesterday\n")
    result = run("--config", str(cfg))
    assert result.returncode == 2 and f"{cfg}:2:" in result.stderr


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "simulator", "--webhooks", "sometimes"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and "--webhooks" in result.stderr


def test_state_file_persists_across_restarts(tmp_path):
    state = str(tmp_path / "state.sqlite")
    key = {"Authorization": "Bearer sk_sbox_" + "a" * 27}
    body = {"source": {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030},
            "currency": "EUR", "amount": 0}
    srv = ServerProcess("--state", state).wait_ready()
    try:
        pay = requests.post(srv.url + "/checkout/payments", json=body, headers=key, timeout=10).json()
    finally:
        srv.stop()
    srv = ServerProcess("--state", state).wait_ready()
    try:
        again = requests.get(f"{srv.url}/checkout/payments/{pay['id']}", headers=key, timeout=10)
        assert again.status_code == 200 and again.json()["status"] == "Card Verified"
    finally:
        srv.stop()
    with open(state, "rb") as fh:
        assert b"4242424242424242" not in fh.read()


KEY = {"Authorization": "Bearer sk_sbox_" + "a" * 27}
CARD = {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030}


def _pay(url, amount):
    return requests.post(url + "/checkout/payments", headers=KEY, timeout=10,
                         json={"source": CARD, "currency": "EUR", "amount": amount, "description": "x" * 100})


def _as_found(path):
    """Every file of the state file's directory, with its bytes: what a refusal must leave as it was."""
    folder = path.parent
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


@pytest.fixture(scope="module")
def stopped_state(tmp_path_factory):
    """A state file of 40 payments stopped with ^C: the database alone, its log applied and gone."""
    path = tmp_path_factory.mktemp("stopped") / "state.db"
    srv = ServerProcess("--state", str(path)).wait_ready()
    try:
        ids = [_pay(srv.url, 100 + n).json()["id"] for n in range(40)]
    finally:
        srv.proc.send_signal(signal.SIGINT)
        srv.proc.wait(timeout=30)
        srv.stop()
    assert os.listdir(path.parent) == ["state.db"]
    return path, ids


def _damage(path, offset, size):
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * size)


def _damage_a_payments_text(path):
    _damage(path, path.read_bytes().index(b'"id": "pay_') + 100, 64)


def _sql(statement):
    def damage(path):
        with sqlite3.connect(path) as db:
            db.execute(statement)
        db.close()
    return damage


DAMAGE = {
    # SQLite reads the row, its UTF-8 does not decode
    "a payment's text": _damage_a_payments_text,
    # SQLite's own check finds it
    "a tree page": lambda path: _damage(path, 4096, 512),
    "record that is not JSON": _sql("UPDATE records SET data = '{broken'"
                                    " WHERE rowid = (SELECT min(rowid) FROM records)"),
    "object that is not JSON": _sql("UPDATE objects SET data = 'zzz' WHERE rowid = 7"),
    "object without its document": _sql("UPDATE objects SET data = NULL WHERE rowid = 8"),
    "object JSON cut at a NUL": _sql("UPDATE objects SET data = '{}' || char(0) || 'x' WHERE rowid = 9"),
    "log position": _sql("UPDATE log_position SET offset = -16"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_state_file_is_refused_in_one_line_and_left_as_it_was(stopped_state, tmp_path, damage):
    # it showed as a Python traceback and exit status 1 (or a sandbox serving a misread file), once
    # start-up had written to the file already (its layout, the log's records)
    path = tmp_path / "state.db"
    shutil.copy(stopped_state[0], path)
    DAMAGE[damage](path)
    before = _as_found(path)
    result = run("--port", "0", "--state", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"psp-sandbox: {path}: not a usable state file")
    assert _as_found(path) == before


def _logged(path, *records):
    """A log beside ``path`` holding ``records`` (body, whole) from where the file's log position
    expects the next one; a record not whole has its checksum off, as a kill mid-append leaves it."""
    from simulator.core.state import _HEAD
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        seq, offset = db.execute("SELECT seq, offset FROM log_position").fetchone()
    db.close()
    with open(f"{path}-log", "wb") as log:
        log.write(bytes(offset))
        for number, (body, whole) in enumerate(records, seq):
            log.write(_HEAD.pack(len(body), zlib.crc32(body) ^ (not whole), number) + body)
        log.write(bytes(4096))


def test_a_log_record_that_does_not_decode_is_refused_and_both_files_left_as_they_were(stopped_state, tmp_path):
    # its number and checksum hold, so it was written whole: damage, not a kill
    path = tmp_path / "state.db"
    shutil.copy(stopped_state[0], path)
    _logged(path, (b"\xffnot marshal" * 10, True))
    before = _as_found(path)
    result = run("--port", "0", "--state", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"psp-sandbox: {path}-log: not a usable log")
    assert _as_found(path) == before


def test_a_log_record_torn_by_a_kill_still_ends_the_replay_and_the_sandbox_starts(stopped_state, tmp_path):
    path = tmp_path / "state.db"
    shutil.copy(stopped_state[0], path)
    _logged(path, (marshal.dumps([(("r", "probe", "whole"), (None, "{}"))]), True),
            (marshal.dumps([(("r", "probe", "torn"), (None, "{}"))]), False))
    srv = ServerProcess("--state", str(path)).wait_ready()
    try:
        assert all(requests.get(f"{srv.url}/checkout/payments/{pid}", headers=KEY, timeout=10).status_code == 200
                   for pid in stopped_state[1])
    finally:
        srv.proc.send_signal(signal.SIGINT)
        srv.proc.wait(timeout=30)
        srv.stop()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT key FROM records WHERE space = 'probe'").fetchall() == [("whole",)]
    db.close()


def _users(path):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
        db.execute("INSERT INTO users (email) VALUES ('a@example.com')")
    db.close()


def _sandbox_layout_and(path, extra):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE objects (provider TEXT, kind TEXT, id TEXT, tenant TEXT, data TEXT,"
                   " PRIMARY KEY (provider, kind, id))")
        db.execute(extra)
    db.close()


FOREIGN = {
    "another program's tables": _users,
    "an objects table of other columns": _sql("CREATE TABLE objects (id INTEGER PRIMARY KEY, name TEXT)"),
    "the sandbox's table beside another": lambda path: _sandbox_layout_and(path, "CREATE TABLE users (id)"),
    "the sandbox's layout and a view": lambda path: (
        _sandbox_layout_and(path, "PRAGMA user_version = 2"), _sql("CREATE VIEW v AS SELECT 1")(path)),
}


@pytest.mark.parametrize("made", list(FOREIGN))
def test_another_programs_sqlite_database_is_refused_and_left_as_it_was(tmp_path, made):
    # it gained the sandbox's tables and user_version 2, and served
    path = tmp_path / "app.db"
    FOREIGN[made](path)
    before = _as_found(path)
    result = run("--port", "0", "--state", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"psp-sandbox: {path}: not a sandbox state file")
    assert _as_found(path) == before


@pytest.mark.parametrize("made", ["empty file", "database without tables"])
def test_an_empty_state_file_is_taken_as_a_new_one(tmp_path, made):
    path = tmp_path / "new.db"
    if made == "empty file":
        path.write_bytes(b"")
    else:
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA journal_mode=WAL")
        db.close()
    srv = ServerProcess("--state", str(path)).wait_ready()
    try:
        assert _pay(srv.url, 100).status_code == 201
    finally:
        srv.stop()
