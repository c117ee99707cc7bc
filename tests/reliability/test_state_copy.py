"""README: a killed sandbox's state is copied as three files, FILE, FILE-wal and FILE-log, taken
while it is stopped or killed. The database file alone lags behind both: the applier's rows wait in
SQLite's -wal until a checkpoint, and the log, once applied, is reused from its start."""
from __future__ import annotations

import os
import shutil
import threading
import time

import requests

from simulator.core.state import _HEAD
from simulator.testing import ServerProcess

KEY = {"Authorization": "Bearer sk_sbox_" + "c" * 27}
CARD = {"type": "card", "number": "4242424242424242", "expiry_month": 12, "expiry_year": 2030}
WRITERS = 6


def _first_record(log: str) -> int:
    """The number of the record at the start of the log: it changes as the log starts over."""
    try:
        with open(log, "rb") as fh:
            head = fh.read(_HEAD.size)
    except FileNotFoundError:
        return 0
    return _HEAD.unpack(head)[2] if len(head) == _HEAD.size else 0


def test_a_copy_of_a_killed_sandboxs_three_files_restores_every_acknowledged_payment(tmp_path):
    state = tmp_path / "state.db"
    srv = ServerProcess("--state", str(state)).wait_ready()
    acked: dict[str, int] = {}   # payment id -> amount, for every 201 that arrived
    stop = threading.Event()

    def writer(w: int) -> None:
        http = requests.Session()
        http.trust_env = False
        for n in range(100_000):
            if stop.is_set():
                return
            amount = 100 + n * WRITERS + w
            try:
                resp = http.post(srv.url + "/checkout/payments", headers=KEY, timeout=10, json={
                    "source": CARD, "currency": "EUR", "amount": amount, "reference": f"order-{amount}",
                    "metadata": {"pad": "x" * 8000}})
            except requests.RequestException:   # cut off by the kill: never acknowledged
                return
            assert resp.status_code == 201, resp.text
            acked[resp.json()["id"]] = amount

    workers = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    try:
        for worker in workers:
            worker.start()
        # killed just after the log started over, writers still at it: the database file alone is
        # then furthest behind what was acknowledged
        log, deadline = f"{state}-log", time.monotonic() + 120
        first = 0
        while not first and time.monotonic() < deadline:
            first = _first_record(log)
        while _first_record(log) == first and time.monotonic() < deadline:
            time.sleep(0.002)
        assert time.monotonic() < deadline, "the log never started over"
        srv.kill9()
    finally:
        stop.set()
        srv.kill9()
        for worker in workers:
            worker.join(timeout=30)
    assert len(acked) > 100

    copy = tmp_path / "copy" / "state.db"
    copy.parent.mkdir()
    for suffix in ("", "-wal", "-log"):
        shutil.copy(f"{state}{suffix}", f"{copy}{suffix}")
    assert not os.path.exists(f"{copy}-shm")   # SQLite rebuilds it: not part of the copy
    srv = ServerProcess("--state", str(copy)).wait_ready()
    try:
        http = requests.Session()
        http.trust_env = False
        found = {}
        for pid in acked:
            resp = http.get(f"{srv.url}/checkout/payments/{pid}", headers=KEY, timeout=10)
            found[pid] = resp.json()["amount"] if resp.status_code == 200 else resp.status_code
        assert found == acked
    finally:
        srv.stop()
