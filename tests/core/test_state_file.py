"""The state file: locked to one process, versioned, and resuming ids, clock, idempotency answers
and pending deliveries after a kill -9."""
import socket
import sqlite3
import subprocess
import sys

import requests

from simulator.testing import ServerProcess, WebhookReceiver, free_port

KEY = {"Authorization": "Bearer sk_sbox_" + "a" * 27}
CARD = {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030}
START = "2026-01-01T00:00:00Z"


def payment(url, key=None, amount=1000, number="4242424242424242"):
    headers = dict(KEY, **({"Cko-Idempotency-Key": key} if key else {}))
    return requests.post(url + "/checkout/payments", headers=headers, timeout=10,
                         json={"source": dict(CARD, number=number), "currency": "EUR", "amount": amount})


def killed(srv: ServerProcess) -> None:
    srv.proc.kill()
    srv.proc.communicate(timeout=10)


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
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1


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
    killed(srv)

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
        killed(srv)
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


class _HeldConnection:
    """The state file's connection, with the first transaction held open until released: what a
    slow disk looks like to the requests committing meanwhile."""

    def __init__(self, db):
        import threading
        self.db, self.transactions, self._open = db, 0, False
        self.writing, self.release = threading.Event(), threading.Event()

    def execute(self, sql, params=()):
        # a statement outside BEGIN ... COMMIT is a transaction of its own
        if sql == "BEGIN" or not self._open:
            self._open = sql == "BEGIN"
            self.transactions += 1
            if self.transactions == 1:
                self.writing.set()
                assert self.release.wait(10)
        return self.db.execute(sql, params)

    def __enter__(self):
        return self.db.__enter__()

    def __exit__(self, *exc):
        self._open = False
        return self.db.__exit__(*exc)


def test_requests_committing_together_share_one_transaction_and_no_object_lock_waits_for_it(tmp_path):
    import threading
    from simulator.core import state as state_mod, store as store_mod
    state = state_mod.StateFile(str(tmp_path / "s.db"))
    store = store_mod.SQLiteStore(state)
    held = state.db = _HeldConnection(state.db)
    answered = []

    def request(n: int):
        state.begin()
        store.put("p", "thing", f"o{n}", {"id": f"o{n}", "n": n}, "t")
        state.commit()
        answered.append(n)

    first = threading.Thread(target=request, args=(0,))
    first.start()
    try:
        assert held.writing.wait(10)
        # the first commit is inside SQLite: the store's lock is free for every other request
        assert store.lock.acquire(timeout=5)
        store.lock.release()
        others = [threading.Thread(target=request, args=(n,)) for n in range(1, 6)]
        for t in others:
            t.start()
        while len(state._queue) < 5:   # each has queued its row and waits for it to be written
            assert all(t.is_alive() for t in others)
            threading.Event().wait(0.01)
        assert answered == []   # nobody answers before its own rows are written
    finally:
        held.release.set()
    for t in [first, *others]:
        t.join(timeout=10)
    try:
        assert sorted(answered) == list(range(6))
        assert held.transactions == 2   # the first request's transaction, then one for the five that waited
        rows = state.execute("SELECT id FROM objects ORDER BY id")
        assert rows == [(f"o{n}",) for n in range(6)]
    finally:
        state.db = held.db
        state.close()


def test_a_request_that_changed_one_row_writes_it_without_begin_and_commit(tmp_path):
    # a lone statement is a transaction of its own in SQLite; BEGIN and COMMIT around it would be
    # two more calls that give up the interpreter lock and wait to get it back
    from simulator.core import state as state_mod, store as store_mod
    state = state_mod.StateFile(str(tmp_path / "s.db"))
    store = store_mod.SQLiteStore(state)
    statements = []
    state.db.set_trace_callback(lambda sql: statements.append(sql.split()[0]))
    try:
        state.begin()
        store.put("p", "thing", "o1", {"id": "o1"}, "t")
        state.commit()
        assert statements == ["INSERT"]
        statements.clear()
        state.begin()   # two rows: both or neither
        store.put("p", "thing", "o2", {"id": "o2"}, "t")
        state.put("space", "key", {"n": 1}, "t")
        state.commit()
        assert statements == ["BEGIN", "INSERT", "INSERT", "COMMIT"]
        assert state.execute("SELECT id FROM objects ORDER BY id") == [("o1",), ("o2",)]
        assert state.get("space", "key") == {"n": 1}
    finally:
        state.close()
