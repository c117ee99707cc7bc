"""The state file behind ``--state``: one SQLite database, locked to one process.

Objects keep their own table (the layout older files already have); everything else a restart
must resume — id stream position, clock, idempotency answers, deliveries, timers — is a row in
``records``, keyed by (space, key). A change outside a request is committed before the caller goes
on. Inside a request (``begin`` ... ``commit``, which the pipeline calls before the answer is
sent) the rows it changed are written in one transaction, so an answer the client saw survives a
kill -9 and a request killed half-way leaves none of its rows. Requests that commit at the same time
share a transaction (group commit): the first to arrive writes every row queued by then while the
others wait for it, and no object's lock is held while SQLite writes. ``PRAGMA user_version`` carries the
layout: a file without it is the objects-only layout and is migrated in place; a newer one is
refused rather than misread.
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
from contextlib import contextmanager, nullcontext
from typing import Any, Iterator

SCHEMA_VERSION = 1
CHECKPOINT_EVERY = 1.0   # seconds


class Deferred:
    """A row value computed when the row is written, under ``lock`` (the lock its object's writers
    hold): an object a request changes several times is serialized once, at commit."""
    __slots__ = ("compute", "lock")

    def __init__(self, compute, lock) -> None:
        self.compute, self.lock = compute, lock


def _computed(params: tuple) -> tuple:
    return tuple(p.compute() if isinstance(p, Deferred) else p for p in params)


class StateError(Exception):
    """The state file cannot be used; the message is one line that names the file."""


class NullState:
    """In-memory runtime: nothing is written, nothing is loaded."""

    persistent = False

    def get(self, space: str, key: str, default: Any = None) -> Any:
        return default

    def put(self, space: str, key: str, value: Any, tenant: str | None = None, *, now: bool = False) -> None:
        pass

    def delete(self, space: str, key: str) -> None:
        pass

    def rows(self, space: str) -> Iterator[tuple[str, str | None, Any]]:
        return iter(())

    def clear(self, space: str, tenant: str | None = None) -> None:
        pass

    def begin(self) -> None:
        pass

    def commit(self) -> None:
        pass

    def together(self):
        return nullcontext()

    def close(self) -> None:
        pass


class StateFile(NullState):
    persistent = True

    def __init__(self, path: str) -> None:
        import sqlite3   # only a run with --state pays for it at start
        self.path = path
        self._lock = threading.Lock()
        # row -> (sql, params) not yet written: always the newest change of that row, whichever
        # thread made it, so a slower request never writes an older version over a newer one
        self._latest: dict[tuple, tuple] = {}
        self._batch = threading.local()   # .rows: the rows this thread's request changed
        # group commit: rows computed and in the order they were computed, waiting for a writer;
        # ``_queued``/``_written`` count rows, so a committer knows when its own are on disk
        self._queue: list[tuple[str, tuple]] = []
        self._queued = self._written = 0
        self._writing = False
        self._failed: tuple[int, int, BaseException] | None = None   # (after, upto, error) of a lost batch
        self._turn = threading.Condition(threading.Lock())
        self._db_lock = threading.Lock()   # the connection: one statement or transaction at a time
        # flock is independent of SQLite's own POSIX locks, and this descriptor stays open for the
        # life of the process: closing any descriptor of the file would drop SQLite's locks
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(f"{path}: {exc.strerror}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise StateError(f"{path}: state file is in use by another process") from None
        try:
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            # WAL without fsync per commit still survives a killed process; only an OS crash could
            # lose the last commits, which a sandbox can afford for its write speed
            self.db.execute("PRAGMA synchronous=NORMAL")
            # the checkpoint (WAL copied back into the database, with an fsync) runs on its own
            # thread and connection instead of inside whichever request's commit crossed the limit
            self.db.execute("PRAGMA wal_autocheckpoint=0")
            self._migrate()
            self._checkpoints = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            self._release()
            raise StateError(f"{path}: not a usable state file ({exc})") from None
        except StateError:
            self._release()
            raise
        self._stopping = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="sandbox-checkpoint", daemon=True)
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        while not self._stopping.wait(CHECKPOINT_EVERY):
            try:
                self._checkpoints.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except self._checkpoints.Error:   # busy or closing: the next round catches up
                pass

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StateError(f"{self.path}: state file layout {version} is newer than this sandbox "
                             f"understands ({SCHEMA_VERSION}); use a newer sandbox or another file")
        with self.db:
            self.db.execute("BEGIN")
            # version 0 is either a new file or the objects-only layout: both gain what is missing
            self.db.execute("CREATE TABLE IF NOT EXISTS objects (provider TEXT, kind TEXT, id TEXT, tenant TEXT,"
                            " data TEXT, PRIMARY KEY (provider, kind, id))")
            self.db.execute("CREATE TABLE IF NOT EXISTS records (space TEXT, key TEXT, tenant TEXT, data TEXT,"
                            " PRIMARY KEY (space, key))")
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- records -----------------------------------------------------------------------------
    def get(self, space: str, key: str, default: Any = None) -> Any:
        with self._lock:
            self._drain()
            with self._db_lock:
                row = self.db.execute("SELECT data FROM records WHERE space = ? AND key = ?", (space, key)).fetchone()
        return default if row is None else json.loads(row[0])

    def put(self, space: str, key: str, value: Any, tenant: str | None = None, *, now: bool = False) -> None:
        """``now``: committed at once even inside a request (what other requests rely on at once)."""
        data = json.dumps(value, separators=(",", ":"))
        self.write(("r", space, key), now=now, sql="INSERT INTO records (space, key, tenant, data) VALUES (?, ?, ?, ?)"
                   " ON CONFLICT (space, key) DO UPDATE SET tenant = excluded.tenant, data = excluded.data",
                   params=(space, key, tenant, data))

    def delete(self, space: str, key: str) -> None:
        self.write(("r", space, key), "DELETE FROM records WHERE space = ? AND key = ?", (space, key))

    # -- batching ----------------------------------------------------------------------------
    def write(self, row: tuple, sql: str, params, now: bool = False) -> None:
        """Change one row: at once outside a request, at ``commit`` inside one. A ``Deferred``
        value's lock must be held by the caller when the row is written at once."""
        rows = None if now else getattr(self._batch, "rows", None)
        if rows is not None:
            with self._lock:
                self._latest[row] = (sql, params)
            rows.append(row)
            return
        with self._lock:
            self._latest[row] = (sql, params)
            ticket = self._enqueue((row,))
        self._await(ticket)

    def begin(self) -> None:
        self._batch.rows = []

    def commit(self) -> None:
        rows = getattr(self._batch, "rows", None)
        self._batch.rows = None
        if not rows:
            return
        # deferred values are computed under their objects' lock, which every writer takes before
        # this file's lock: take those first, then look again for any deferred since
        locks: dict[int, Any] = {}
        while True:
            for lock in locks.values():
                lock.acquire()
            try:
                with self._lock:
                    more = {id(p.lock): p.lock for p in self._deferred(rows) if id(p.lock) not in locks}
                    if not more:
                        ticket = self._enqueue(rows)
                        break
            finally:
                for lock in locks.values():
                    lock.release()
            locks.update(more)
        self._await(ticket)   # the objects' locks are free again while SQLite writes

    @contextmanager
    def together(self):
        """The rows changed inside are written in one transaction as the block ends (inside a
        request, with the request's): a kill never leaves one of them without the others."""
        if getattr(self._batch, "rows", None) is not None:
            yield
            return
        self.begin()
        try:
            yield
        finally:
            self.commit()

    def _deferred(self, rows) -> list[Deferred]:
        return [p for row in rows if row in self._latest for p in self._latest[row][1] if isinstance(p, Deferred)]

    def _enqueue(self, rows) -> int:
        """Queue the newest version of ``rows`` and return the count the caller must see written.
        The caller holds the lock, and the lock of every deferred value among these rows. A row
        another thread already took is in the queue in a version at least as new: the caller
        waits for it too, so the count covers everything queued so far."""
        todo = [self._latest.pop(row) for row in dict.fromkeys(rows) if row in self._latest]
        computed = [(sql, _computed(params)) for sql, params in todo]
        with self._turn:
            self._queue.extend(computed)
            self._queued += len(computed)
            return self._queued

    def _await(self, ticket: int) -> None:
        """Return once the first ``ticket`` queued rows are written, writing them if nobody is."""
        with self._turn:
            while self._written < ticket:
                if self._writing:
                    self._turn.wait()
                    continue
                batch, self._queue = self._queue, []
                after, upto = self._written, self._queued
                self._writing = True
                self._turn.release()
                error = None
                try:
                    with self._db_lock:
                        self._write(batch)
                except BaseException as exc:
                    error = exc
                finally:
                    self._turn.acquire()
                    self._writing = False
                    self._written = upto
                    if error is not None:
                        self._failed = (after, upto, error)
                    self._turn.notify_all()
            failed = self._failed
        if failed is not None and failed[0] < ticket <= failed[1]:
            raise StateError(f"{self.path}: rows not written ({failed[2]})") from failed[2]

    def _write(self, batch: list[tuple[str, tuple]]) -> None:
        """One transaction: all of these rows or none."""
        if len(batch) == 1:
            # one statement is a transaction of its own: no BEGIN and COMMIT around it, each of
            # which is one more call that gives up the interpreter lock and waits to get it back
            self.db.execute(*batch[0])
            return
        with self.db:
            self.db.execute("BEGIN")
            for sql, params in batch:
                self.db.execute(sql, params)

    def _drain(self) -> None:
        # caller holds the lock (so nothing is queued meanwhile): what is queued is written first
        with self._turn:
            ticket = self._queued
        self._await(ticket)

    def _forget(self, match) -> None:
        # caller holds the lock: rows a bulk delete removes must not be written after it
        for row in [row for row in self._latest if match(row)]:
            del self._latest[row]

    def rows(self, space: str) -> Iterator[tuple[str, str | None, Any]]:
        with self._lock:
            self._drain()
            with self._db_lock:
                found = self.db.execute("SELECT key, tenant, data FROM records WHERE space = ? ORDER BY rowid",
                                        (space,)).fetchall()
        return ((key, tenant, json.loads(data)) for key, tenant, data in found)

    def clear(self, space: str, tenant: str | None = None) -> None:
        with self._lock:
            self._forget(lambda row: row[0] == "r" and row[1] == space
                         and (tenant is None or len(self._latest[row][1]) < 3 or self._latest[row][1][2] == tenant))
            self._drain()   # a queued row must not be written after the delete
            with self._db_lock:
                if tenant is None:
                    self.db.execute("DELETE FROM records WHERE space = ?", (space,))
                else:
                    self.db.execute("DELETE FROM records WHERE space = ? AND tenant = ?", (space, tenant))

    # -- objects (the store's own table) -----------------------------------------------------
    def execute(self, sql: str, params: tuple = ()) -> list:
        with self._lock:
            self._drain()
            with self._db_lock:
                return self.db.execute(sql, params).fetchall()

    def clear_objects(self) -> None:
        with self._lock:
            self._forget(lambda row: row[0] == "o")
            self._drain()
            with self._db_lock:
                self.db.execute("DELETE FROM objects")

    def _release(self) -> None:
        # every connection closes together: closing any descriptor of the file drops SQLite's locks
        for name in ("_checkpoints", "db"):
            connection = getattr(self, name, None)
            if connection is not None:
                connection.close()
        os.close(self._fd)

    def close(self) -> None:
        stopping = getattr(self, "_stopping", None)
        if stopping is not None:
            stopping.set()
            self._checkpointer.join(timeout=5)
        with self._lock:
            if self._fd is not None:
                self._drain()
                with self._db_lock:
                    self._release()
                self._fd = None
