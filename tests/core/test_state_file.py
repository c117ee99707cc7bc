"""The state file: locked to one process, versioned, and resuming ids, clock, idempotency answers
and pending deliveries after a kill -9."""
import socket
import sqlite3
import subprocess
import sys

import requests

from simulator.core.state import SCHEMA_VERSION
from simulator.testing import ServerProcess, WebhookReceiver, free_port

KEY = {"Authorization": "Bearer sk_sbox_" + "a" * 27}
CARD = {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030}
START = "2026-01-01T00:00:00Z"


def payment(url, key=None, amount=1000, number="4242424242424242"):
    headers = dict(KEY, **({"Cko-Idempotency-Key": key} if key else {}))
    return requests.post(url + "/checkout/payments", headers=headers, timeout=10,
                         json={"source": dict(CARD, number=number), "currency": "EUR", "amount": amount})


def config(tmp_path, receiver_url=None):
    path = tmp_path / "cfg.yaml"
    hooks = (f"    webhook_url: {receiver_url}/cko\n    webhook_signing_key: k\n") if receiver_url else "    {}\n"
    path.write_text(f"clock: {{start: '{START}'}}\nwebhooks: manual\nproviders:\n  checkout:\n{hooks}")
    return str(path)


def run_cli(*args):
    return subprocess.run([sys.executable, "run.py", "--port", str(free_port()), *args], capture_output=True,
                          text=True, timeout=30)


def test_a_second_process_on_a_locked_state_file_exits_2_and_serves_nothing(tmp_path):
    state = str(tmp_path / "s.db")
    first = ServerProcess("--state", state).wait_ready()
    try:
        port = free_port()
        second = subprocess.run([sys.executable, "run.py", "--port", str(port), "--state", state],
                                capture_output=True, text=True, timeout=30)
        assert second.returncode == 2
        assert second.stdout == ""
        assert second.stderr.count("\n") == 1 and state in second.stderr and "in use" in second.stderr
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
        # the first process still owns the file and answers
        assert payment(first.url).status_code == 201
    finally:
        first.stop()


def test_a_state_file_from_a_newer_sandbox_is_refused(tmp_path):
    state = tmp_path / "new.db"
    with sqlite3.connect(state) as db:
        db.execute("PRAGMA user_version = 99")
    result = run_cli("--state", str(state))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert str(state) in result.stderr and "newer" in result.stderr


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    state = tmp_path / "junk.db"
    state.write_bytes(b"not sqlite at all, " * 100)
    result = run_cli("--state", str(state))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and str(state) in result.stderr


def test_an_objects_only_state_file_is_migrated(tmp_path):
    state = str(tmp_path / "old.db")
    port = free_port()  # links in a body carry the port
    srv = ServerProcess("--seed", "42", "--state", state, port=port).wait_ready()
    try:
        first = payment(srv.url).json()
        stored = requests.get(f"{srv.url}/checkout/payments/{first['id']}", headers=KEY, timeout=10).json()
    finally:
        srv.stop()
    with sqlite3.connect(state) as db:  # back to the layout before versions: the objects table alone
        db.execute("DROP TABLE records")
        db.execute("PRAGMA user_version = 0")
    srv = ServerProcess("--seed", "42", "--state", state, port=port).wait_ready()
    try:
        again = requests.get(f"{srv.url}/checkout/payments/{first['id']}", headers=KEY, timeout=10)
        assert again.status_code == 200 and again.json() == stored
        second = payment(srv.url, amount=2000).json()
        assert second["id"] != first["id"]
        assert requests.get(f"{srv.url}/checkout/payments/{first['id']}", headers=KEY, timeout=10).json() == stored
    finally:
        srv.stop()
    with sqlite3.connect(state) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_restart_keeps_the_id_stream_clock_offsets_and_idempotent_answers(tmp_path):
    """Issue 10, defects 2 and 4: same seed, same file, after a kill -9."""
    state = str(tmp_path / "s.db")
    cfg = config(tmp_path)
    port = free_port()
    srv = ServerProcess("--seed", "42", "--state", state, "--config", cfg, port=port).wait_ready()
    first = payment(srv.url, key="order-1").json()
    first_body = requests.get(f"{srv.url}/checkout/payments/{first['id']}", headers=KEY, timeout=10).json()
    requests.post(srv.url + "/_sandbox/clock", json={"advance": "PT2H"}, timeout=10).raise_for_status()
    requests.post(srv.url + "/_sandbox/clock", json={"advance": "PT3H", "tenant": "sk_sbox_" + "a" * 27},
                  timeout=10).raise_for_status()
    clocks = [requests.get(srv.url + "/_sandbox/clock", params=p, timeout=10).json()["now"]
              for p in ({}, {"tenant": "sk_sbox_" + "a" * 27})]
    srv.kill9()

    srv = ServerProcess("--seed", "42", "--state", state, "--config", cfg, port=port).wait_ready()
    try:
        assert [requests.get(srv.url + "/_sandbox/clock", params=p, timeout=10).json()["now"]
                for p in ({}, {"tenant": "sk_sbox_" + "a" * 27})] == clocks == \
            ["2026-01-01T02:00:00.000Z", "2026-01-01T05:00:00.000Z"]
        # within Checkout's 24 h: the stored answer, not a second payment
        replay = payment(srv.url, key="order-1", amount=9999, number="5436031030606378")
        assert replay.status_code == 201 and replay.json() == first
        other = payment(srv.url, key="order-2", amount=9999, number="5436031030606378")
        assert other.status_code == 201
        fresh = other.json()
        assert fresh["id"] != first["id"] and fresh["source"]["id"] != first["source"]["id"]
        assert requests.get(f"{srv.url}/checkout/payments/{first['id']}", headers=KEY, timeout=10).json() \
            == first_body
    finally:
        srv.stop()


def test_a_pending_retry_is_sent_at_its_virtual_instant_after_a_restart(tmp_path):
    receiver = WebhookReceiver(status=500).start()
    state = str(tmp_path / "s.db")
    cfg = config(tmp_path, receiver.url)
    try:
        srv = ServerProcess("--seed", "1", "--state", state, "--config", cfg).wait_ready()
        pay = payment(srv.url).json()
        requests.post(srv.url + "/_sandbox/webhooks/flush", timeout=10).raise_for_status()  # refused: 500
        assert len(receiver.requests) == 2  # payment_approved, payment_captured
        srv.kill9()
        receiver.status = 200

        srv = ServerProcess("--seed", "1", "--state", state, "--config", cfg).wait_ready()
        try:
            hooks = requests.get(srv.url + "/_sandbox/webhooks", timeout=10).json()["webhooks"]
            assert [h["status"] for h in hooks] == ["failed", "failed"]
            assert {h["next_attempt_at"] for h in hooks} == {"2026-01-01T00:05:00.000Z"}
            requests.post(srv.url + "/_sandbox/clock", json={"advance": "PT4M59S"}, timeout=10)
            assert len(receiver.requests) == 2
            requests.post(srv.url + "/_sandbox/clock", json={"advance": "PT1S"}, timeout=10)
            delivered = receiver.requests[2:]
            assert sorted(r["body"].count(pay["id"].encode()) > 0 for r in delivered) == [True, True]
            hooks = requests.get(srv.url + "/_sandbox/webhooks", timeout=10).json()["webhooks"]
            assert [h["status"] for h in hooks] == ["delivered", "delivered"]
            assert [h["attempts"][-1]["at"] for h in hooks] == ["2026-01-01T00:05:00.000Z"] * 2
        finally:
            srv.stop()
    finally:
        receiver.stop()


def test_an_object_put_twice_in_a_request_is_encoded_once_in_its_final_state(tmp_path, monkeypatch):
    from simulator.core import state as state_mod, store as store_mod
    encoded = []
    real = store_mod._dump
    monkeypatch.setattr(store_mod, "_dump", lambda obj: encoded.append(obj["n"]) or real(obj))
    state = state_mod.StateFile(str(tmp_path / "s.db"))
    store = store_mod.SQLiteStore(state)
    try:
        state.begin()
        obj = {"id": "o1", "n": 1}
        store.put("p", "thing", "o1", obj, "t")
        obj["n"] = 2
        store.put("p", "thing", "o1", obj, "t")
        assert encoded == []   # nothing is encoded before the commit
        state.commit()
        assert encoded == [2]
        assert state.execute("SELECT data FROM objects WHERE id = 'o1'") == [('{"id": "o1", "n": 2}',)]
    finally:
        state.close()


def test_concurrent_requests_on_one_object_commit_its_newest_state(tmp_path):
    import threading
    from simulator.core import state as state_mod, store as store_mod
    state = state_mod.StateFile(str(tmp_path / "s.db"))
    store = store_mod.SQLiteStore(state)
    store.put("p", "thing", "o1", {"id": "o1", "n": 0}, "t")
    errors = []

    def request(times: int):
        try:
            for _ in range(times):
                state.begin()
                with store.lock:
                    obj = store.get("p", "thing", "o1")
                    obj["n"] += 1
                    store.put("p", "thing", "o1", obj, "t")
                state.commit()
        except Exception as exc:   # a deadlock shows as the join timing out, anything else here
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(200,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert not errors and not any(t.is_alive() for t in threads)
        assert state.execute("SELECT data FROM objects WHERE id = 'o1'") == [('{"id": "o1", "n": 1200}',)]
    finally:
        state.close()


def test_the_write_ahead_log_is_checkpointed_without_a_request(tmp_path, monkeypatch):
    import os
    import time
    from simulator.core import state as state_mod, store as store_mod
    monkeypatch.setattr(state_mod, "CHECKPOINT_EVERY", 0.05)
    path = str(tmp_path / "s.db")
    state = state_mod.StateFile(path)
    store = store_mod.SQLiteStore(state)
    try:
        before = os.path.getsize(path)
        for i in range(50):
            store.put("p", "thing", f"o{i}", {"id": f"o{i}", "pad": "x" * 2000}, "t")
        deadline = time.monotonic() + 10
        while os.path.getsize(path) <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.getsize(path) > before   # the rows reached the database file itself
    finally:
        state.close()


def test_a_commit_is_logged_without_waiting_for_sqlite(tmp_path):
    # a request's rows are safe once logged: no request waits while SQLite writes
    import threading
    from simulator.core import state as state_mod, store as store_mod
    state = state_mod.StateFile(str(tmp_path / "s.db"))
    store = store_mod.SQLiteStore(state)
    answered = []

    def request(n: int):
        state.begin()
        store.put("p", "thing", f"o{n}", {"id": f"o{n}", "n": n}, "t")
        state.commit()
        answered.append(n)

    try:
        with state._db_lock:   # SQLite busy with a long transaction
            threads = [threading.Thread(target=request, args=(n,)) for n in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=10)
            assert sorted(answered) == list(range(6))
        # in the order the threads logged them, which is not the order they were started in
        assert sorted(state.execute("SELECT id FROM objects")) == [(f"o{n}",) for n in range(6)]
    finally:
        state.close()


def test_rows_of_many_requests_reach_sqlite_in_one_transaction_of_a_few_statements(tmp_path, monkeypatch):
    from simulator.core import state as state_mod, store as store_mod
    monkeypatch.setattr(state_mod, "APPLY_EVERY", 3600)   # applied only when read below
    state = state_mod.StateFile(str(tmp_path / "s.db"))
    store = store_mod.SQLiteStore(state)
    statements = []
    state.db.set_trace_callback(lambda sql: statements.append(sql.split()[0]))
    try:
        for n in range(200):
            state.begin()
            store.put("p", "thing", f"o{n}", {"id": f"o{n}", "n": n}, "t")
            state.put("space", f"k{n}", {"n": n}, "t")
            if n % 2:
                state.delete("space", f"k{n - 1}")
            state.commit()
        assert statements == []   # logged, nothing written to SQLite yet
        assert state.execute("SELECT count(*) FROM objects") == [(200,)]
        # one transaction: deleted records, objects, records, the log position
        assert statements[:-1] == ["BEGIN", "DELETE", "INSERT", "INSERT", "INSERT", "COMMIT"]
        assert [key for key, _, _ in state.rows("space")] == [f"k{n}" for n in range(1, 200, 2)]
    finally:
        state.close()


_KILLED_WRITER = """
import os, signal, sys
from simulator.core import state as state_mod, store as store_mod
state_mod.APPLY_EVERY = 3600   # nothing applied: what survives is what the log holds
state_mod.LOG_SIZE = int(sys.argv[2])
state = state_mod.StateFile(sys.argv[1])
store = store_mod.SQLiteStore(state)
for n in range(int(sys.argv[3])):
    state.begin()
    store.put("p", "thing", f"o{n % 50}", {"id": f"o{n % 50}", "n": n, "pad": "x" * 100}, "t")
    state.put("space", "last", {"n": n}, "t")
    state.commit()
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_writer(path, log_size: int, requests: int) -> None:
    import os
    import signal
    done = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path), str(log_size), str(requests)],
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr


def _stored(path) -> tuple[dict, dict | None]:
    import json
    from simulator.core import state as state_mod
    state = state_mod.StateFile(str(path))
    try:
        objects = {i: json.loads(d)["n"] for i, d in state.execute("SELECT id, data FROM objects")}
        return objects, state.get("space", "last")
    finally:
        state.close()


def test_rows_only_the_log_holds_survive_a_kill_9(tmp_path):
    path = tmp_path / "s.db"
    _killed_writer(path, 1 << 20, 120)
    with sqlite3.connect(path) as db:   # the database itself never saw them
        assert db.execute("SELECT count(*) FROM objects").fetchone()[0] == 0
    objects, last = _stored(path)
    assert objects == {f"o{k}": max(n for n in range(120) if n % 50 == k) for k in range(50)}
    assert last == {"n": 119}
    with sqlite3.connect(path) as db:   # applied, and the log position with them
        assert db.execute("SELECT count(*) FROM objects").fetchone()[0] == 50
    assert _stored(path) == (objects, last)   # the log is not applied twice


def test_a_record_torn_by_the_kill_ends_the_replay(tmp_path):
    path = tmp_path / "s.db"
    _killed_writer(path, 1 << 20, 3)
    with open(f"{path}-log", "r+b") as log:   # the last record's last byte never reached the file
        data = log.read()
        end = len(data.rstrip(b"\0"))
        log.seek(end - 1)
        log.write(bytes([data[end - 1] ^ 0xFF]))
    objects, last = _stored(path)
    assert objects == {"o0": 0, "o1": 1} and last == {"n": 1}


def test_a_log_reused_from_its_start_replays_only_the_records_after_its_position(tmp_path):
    # a log of 8 KB holds a few dozen records: 600 requests pass over it many times, and the
    # records of earlier passes are still in the file behind the newest ones
    path = tmp_path / "s.db"
    _killed_writer(path, 8192, 600)
    objects, last = _stored(path)
    assert objects == {f"o{n}": 550 + n for n in range(50)} and last == {"n": 599}


def _opened(tmp_path, monkeypatch, **constants):
    """(path, state file, store on it) with the state module's ``constants`` set for this test."""
    from simulator.core import state as state_mod, store as store_mod
    for name, value in constants.items():
        monkeypatch.setattr(state_mod, name, value)
    path = str(tmp_path / "s.db")
    state = state_mod.StateFile(path)
    return path, state, store_mod.SQLiteStore(state)


def _on_threads(writer, count: int, timeout: float) -> None:
    """``writer(0)`` .. ``writer(count - 1)`` at once; fails on any writer's exception or hang."""
    import threading
    errors = []

    def run(w: int):
        try:
            writer(w)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not errors and not any(t.is_alive() for t in threads), errors


def test_the_write_ahead_log_starts_over_under_sustained_writes(tmp_path, monkeypatch):
    # a checkpoint beside a writer never caught up with it: the WAL grew by every page written
    import os
    path, state, store = _opened(tmp_path, monkeypatch, CHECKPOINT_EVERY=0.02, APPLY_EVERY=0.005)

    def writer(w: int):
        for n in range(4000):
            state.begin()
            store.put("p", "thing", f"o{w}-{n}", {"id": f"o{w}-{n}", "pad": "x" * 2000}, "t")
            state.commit()

    try:
        _on_threads(writer, 2, timeout=120)
        assert state.execute("SELECT count(*) FROM objects") == [(8000,)]   # 16 MB of rows
        # a transaction's pages, a few rounds' worth at most (it reached 120 MB)
        assert os.path.getsize(path + "-wal") < 32 << 20
    finally:
        state.close()


def test_writers_the_applier_and_a_log_starting_over_keep_every_rows_newest_value(tmp_path, monkeypatch):
    # a 16 KB log starts over every few dozen records while the applier runs every millisecond:
    # its rounds race the writers that wrap the log
    from simulator.core import state as state_mod
    path, state, store = _opened(tmp_path, monkeypatch, LOG_SIZE=16384, APPLY_EVERY=0.001)

    def writer(w: int):
        for n in range(400):
            state.begin()
            store.put("p", "thing", f"o{w}-{n % 20}", {"id": f"o{w}-{n % 20}", "n": n, "pad": "x" * 200}, "t")
            state.put("space", f"w{w}", {"n": n}, "t")
            state.commit()

    _on_threads(writer, 4, timeout=60)
    state.close()
    objects, _ = _stored(path)
    assert objects == {f"o{w}-{k}": 380 + k for w in range(4) for k in range(20)}
    again = state_mod.StateFile(path)
    try:
        assert {key: value["n"] for key, _, value in again.rows("space")} == {f"w{w}": 399 for w in range(4)}
    finally:
        again.close()


class _FullDisk:
    """The state file's connection while the disk is full: every write fails until ``freed``."""

    def __init__(self, db):
        import threading
        self.db, self.freed, self.refused = db, threading.Event(), 0

    def execute(self, sql, params=()):
        if sql.startswith(("INSERT", "DELETE")) and not self.freed.is_set():
            self.refused += 1
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, params)

    def __enter__(self):
        return self.db.__enter__()

    def __exit__(self, *exc):
        return self.db.__exit__(*exc)


def test_a_failing_applier_keeps_the_rows_logged_and_says_so_once(tmp_path, monkeypatch, caplog):
    import time
    _, state, _ = _opened(tmp_path, monkeypatch, APPLY_EVERY=0.002)
    full = state.db = _FullDisk(state.db)
    try:
        with caplog.at_level("WARNING", logger="simulator.state"):
            state.put("space", "k", {"n": 1}, "t")   # logged: the answer does not wait for SQLite
            deadline = time.monotonic() + 10
            while full.refused < 20 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert full.refused >= 20
            full.freed.set()
            assert state.get("space", "k") == {"n": 1}

            def said(words):
                return [r.getMessage() for r in caplog.records if words in r.getMessage()]
            deadline = time.monotonic() + 10
            while not said("applied again") and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)   # more rounds: none of them may say it again
        assert len(said("applying the log failed")) == 1, caplog.text
        assert len(said("applied again")) == 1, caplog.text
    finally:
        state.db = full.db
        state.close()


def test_a_record_larger_than_the_whole_log_goes_to_sqlite_before_the_answer(tmp_path, monkeypatch):
    path, state, store = _opened(tmp_path, monkeypatch, LOG_SIZE=4096, APPLY_EVERY=3600)
    try:
        state.begin()
        store.put("p", "thing", "small", {"id": "small"}, "t")
        state.commit()
        state.begin()
        store.put("p", "thing", "big", {"id": "big", "pad": "x" * 10_000}, "t")
        state.commit()
        with sqlite3.connect(path) as db:   # both, in their order, with no applier round between
            assert db.execute("SELECT id FROM objects ORDER BY rowid").fetchall() == [("small",), ("big",)]
        state.begin()
        store.put("p", "thing", "after", {"id": "after"}, "t")
        state.commit()
        assert state.execute("SELECT id FROM objects ORDER BY rowid") == [("small",), ("big",), ("after",)]
    finally:
        state.close()
