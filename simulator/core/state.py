"""The state file behind ``--state``: one SQLite database, locked to one process, and its log.

Objects keep their own table (the layout older files already have); everything else a restart
must resume — id stream position, clock, idempotency answers, deliveries, timers — is a row in
``records``, keyed by (space, key). A change outside a request is logged before the caller goes
on. Inside a request (``begin`` ... ``commit``, which the pipeline calls before the answer is
sent) the rows it changed are logged as one record, so an answer the client saw survives a kill -9
and a request killed half-way leaves none of its rows.

The log (``FILE-log``, beside the database as SQLite's ``-wal`` is) is a file mapped into memory:
appending a record is a copy into the page cache, which outlives a killed process, with no system
call and without giving up the interpreter lock. Writing each request's rows to SQLite instead
cost a transaction, a few 4 KB pages of write-ahead log and several waits for the interpreter lock
per request, a fifth of the server's time. One applier thread writes what the log gathered to
SQLite every ``APPLY_EVERY`` seconds, in one transaction of a few statements whatever the number
of rows (SQLite reads them from one JSON array, so the lock is given up once per statement, not
per row), together with the log position it reached; a restart applies what the log holds past
that position. Records are numbered and checksummed: a record torn by a kill, or one left from an
earlier pass over the log, ends the replay. The log is reused from its start once everything in
it is applied. Readers (start-up, a reset) apply what is pending first. As with SQLite's WAL
without an fsync per commit, only an OS crash could lose the last records, which a sandbox can
afford for its write speed. ``PRAGMA user_version`` carries the layout: a file without it is the
objects-only layout and is migrated in place; a newer one is refused rather than misread.

A file is read back in full before anything is written to it: one that another program made, that
SQLite finds damaged, or that holds a row or a logged record that does not decode is refused as it
is, where writing first (the layout, the log's records) would have spoiled it further before the
damage showed. Neither the database alone nor with the log is a copy of a killed sandbox's state:
applied rows wait in SQLite's ``-wal`` until a checkpoint, the log is reused once they are applied,
and a checkpoint the kill interrupted leaves the database itself needing its ``-wal``. The copy is
of all three files.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import marshal
import mmap
import os
import struct
import threading
import time
import urllib.parse
import zlib
from contextlib import contextmanager, nullcontext
from typing import Any, Iterator

SCHEMA_VERSION = 2   # 2: the log beside the file; a sandbox that ignores it must not open one
CHECKPOINT_EVERY = 1.0   # seconds
APPLY_EVERY = 0.05       # seconds
LOG_SIZE = 8 << 20       # bytes: a few thousand requests' rows between two passes
_HEAD = struct.Struct("<IIQ")   # a record's length, CRC-32 and number, then its rows (marshal)
log = logging.getLogger("simulator.state")

# a row is ("o", provider, kind, id) or ("r", space, key); its value (tenant, data), or None once deleted.
# SQLite reads a table's rows of one transaction from one JSON array of arrays
_FROM_JSON = " FROM json_each(?)"
_APPLY = {
    ("o", True): "INSERT INTO objects (provider, kind, id, tenant, data) SELECT json_extract(value, '$[0]'),"
                 " json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'),"
                 " json_extract(value, '$[4]')" + _FROM_JSON + " WHERE true ORDER BY key"
                 " ON CONFLICT (provider, kind, id) DO UPDATE SET data = excluded.data",
    ("o", False): "DELETE FROM objects WHERE (provider, kind, id) IN (SELECT json_extract(value, '$[0]'),"
                  " json_extract(value, '$[1]'), json_extract(value, '$[2]')" + _FROM_JSON + ")",
    ("r", True): "INSERT INTO records (space, key, tenant, data) SELECT json_extract(value, '$[0]'),"
                 " json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]')"
                 + _FROM_JSON + " WHERE true ORDER BY key"
                 " ON CONFLICT (space, key) DO UPDATE SET tenant = excluded.tenant, data = excluded.data",
    ("r", False): "DELETE FROM records WHERE (space, key) IN (SELECT json_extract(value, '$[0]'),"
                  " json_extract(value, '$[1]')" + _FROM_JSON + ")",
}
# a row's key after its kind: what its deletion extracts
_KEY_PARTS = {kind: sql.count("json_extract") for (kind, kept), sql in _APPLY.items() if not kept}
# what a sandbox makes in its file: each table's columns (name, place in the primary key)
_LAYOUT = {
    "objects": (("provider", 1), ("kind", 2), ("id", 3), ("tenant", 0), ("data", 0)),
    "records": (("space", 1), ("key", 2), ("tenant", 0), ("data", 0)),
    "log_position": (("id", 1), ("seq", 0), ("offset", 0)),
}


class Deferred:
    """A row value computed when the row is logged, under ``lock`` (the lock its object's writers
    hold): an object a request changes several times is serialized once, at commit."""
    __slots__ = ("compute", "lock")

    def __init__(self, compute, lock) -> None:
        self.compute, self.lock = compute, lock


def _computed(value: tuple | None) -> tuple | None:
    return None if value is None else tuple(p.compute() if isinstance(p, Deferred) else p for p in value)


class StateError(Exception):
    """The state file cannot be used; the message is one line that names the file."""


def _is_row(row, value) -> bool:
    """``row`` and ``value`` are as ``StateFile.write`` takes them, once computed."""
    return (type(row) is tuple and len(row) == 1 + _KEY_PARTS.get(row[0] if row else None, -2)
            and all(type(part) is str for part in row)
            and (value is None or type(value) is tuple and len(value) == 2
                 and (value[0] is None or type(value[0]) is str) and type(value[1]) is str))


def _line(problem) -> str:
    """``problem`` as part of that line: SQLite quotes a row's whole text in some messages."""
    text = " ".join(str(problem).split())
    return text if len(text) <= 120 else text[:117] + "..."


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
        # ``_latest``, and the log's tail: appending, and anything that must see no append meanwhile
        self._lock = threading.Lock()
        # row -> value not yet logged: always the newest change of that row, whichever thread
        # made it, so a slower request never logs an older version over a newer one
        self._latest: dict[tuple, tuple | None] = {}
        self._batch = threading.local()   # .rows: the rows this thread's request changed
        self._db_lock = threading.Lock()   # the connection, and ``_applied``
        self._log_fd = self._log = None
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
        self._db_error = sqlite3.DatabaseError
        try:
            position, replay = self._read_back(sqlite3)
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            # WAL without fsync per commit still survives a killed process; only an OS crash could
            # lose the last commits, which a sandbox can afford for its write speed
            self.db.execute("PRAGMA synchronous=NORMAL")
            # the applier checkpoints (WAL copied back into the database, with an fsync) between
            # its transactions: with no write in flight the checkpoint completes and the next
            # transaction starts the WAL over, where one beside a writer let it grow without end
            self.db.execute("PRAGMA wal_autocheckpoint=0")
            self._migrate()
            self._open_log(position, replay)
        except sqlite3.DatabaseError as exc:
            self._release()
            raise StateError(f"{path}: not a usable state file ({_line(exc)})") from None
        except OSError as exc:
            self._release()
            raise StateError(f"{path}-log: {exc.strerror}") from None
        except StateError:
            self._release()
            raise
        self._stopping = threading.Event()
        self._applier = threading.Thread(target=self._apply_loop, name="sandbox-state", daemon=True)
        self._applier.start()

    def _read_back(self, sqlite3) -> tuple[tuple[int, int] | None, tuple[list, int, int] | None]:
        """The log position the file records and what its log holds past it, both read whole before
        anything is written: a file refused is left as it was."""
        existed = {suffix: os.path.exists(self.path + suffix) for suffix in ("-wal", "-shm")}
        try:
            position = self._check(sqlite3)
            return position, self._read_log(position)
        except BaseException:
            # what reading made beside a file it refuses (an empty -wal, the -shm) goes with it
            for suffix, there in existed.items():
                try:
                    if not there and (suffix == "-shm" or os.path.getsize(self.path + suffix) == 0):
                        os.unlink(self.path + suffix)
                except FileNotFoundError:
                    pass
            raise

    def _check(self, sqlite3) -> tuple[int, int] | None:
        """Refuse a file this sandbox would misread or spoil; the log position it records. Read-only:
        a connection that may write checkpoints a killed sandbox's ``-wal`` into the database as it
        closes, refused or not."""
        db = sqlite3.connect("file:" + urllib.parse.quote(self.path) + "?mode=ro", uri=True)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StateError(f"{self.path}: state file layout {version} is newer than this sandbox "
                                 f"understands ({SCHEMA_VERSION}); use a newer sandbox or another file")
            tables = [name for name, in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                                                   " AND name NOT LIKE 'sqlite~_%' ESCAPE '~'")]
            # a table a sandbox never made, or made with other columns, is another program's: the
            # version tells nothing, as the objects-only layout had none, like most programs' files
            foreign = [name for name in tables if name not in _LAYOUT
                       or tuple((c[1], c[5]) for c in db.execute(f"PRAGMA table_info({name})")) != _LAYOUT[name]]
            if foreign:
                raise StateError(f"{self.path}: not a sandbox state file (another program's SQLite database,"
                                 f" with {', '.join(foreign)}); give --state a file of its own")
            damage = db.execute("PRAGMA quick_check(1)").fetchone()[0]
            if damage != "ok":
                raise StateError(f"{self.path}: not a usable state file ({_line(damage)})")
            for table in ("objects", "records"):
                if table in tables:
                    self._check_rows(db, table)
            position = db.execute("SELECT seq, offset FROM log_position").fetchone() \
                if "log_position" in tables else None
        finally:
            db.close()
        if position is not None and not all(type(n) is int and n >= 0 for n in position):
            raise StateError(f"{self.path}: not a usable state file (log position {position!r:.60})")
        return position

    def _check_rows(self, db, table: str) -> None:
        """Every row decodes as loading will decode it: fetching its text decodes it, and SQLite checks
        its JSON (Python's parser would cost as much as the load). Python's parser has the last word
        on what SQLite refuses (NaN) and on a text with a NUL, which SQLite reads only up to."""
        key = ", ".join(name for name, _ in _LAYOUT[table] if name != "data")
        for *_, rowid, data, valid in db.execute(f"SELECT {key}, rowid, data,"
                                                  f" typeof(data) = 'text' AND json_valid(data) FROM {table}"):
            if not valid or "\0" in data:
                try:
                    json.loads(data)
                except (TypeError, ValueError, RecursionError) as exc:
                    raise StateError(f"{self.path}: not a usable state file ({table} row {rowid}: "
                                     f"{_line(exc)})") from None

    def _migrate(self) -> None:
        with self.db:
            self.db.execute("BEGIN")
            # older layouts gain what is missing
            self.db.execute("CREATE TABLE IF NOT EXISTS objects (provider TEXT, kind TEXT, id TEXT, tenant TEXT,"
                            " data TEXT, PRIMARY KEY (provider, kind, id))")
            self.db.execute("CREATE TABLE IF NOT EXISTS records (space TEXT, key TEXT, tenant TEXT, data TEXT,"
                            " PRIMARY KEY (space, key))")
            # how far the log is applied: the number of the next record, and where it starts
            self.db.execute("CREATE TABLE IF NOT EXISTS log_position (id INTEGER PRIMARY KEY CHECK (id = 0),"
                            " seq INTEGER NOT NULL, offset INTEGER NOT NULL)")
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- the log -------------------------------------------------------------------------------
    def _read_log(self, position: tuple[int, int] | None) -> tuple[list, int, int] | None:
        """What a killed process logged past ``position`` and did not apply, as (records, the
        number of the next one, where it goes); None where no log of this database lies beside it.
        Read before anything is written, so a log that does not decode leaves both files as they were."""
        self._log_fd = os.open(self.path + "-log", os.O_RDWR | os.O_CREAT, 0o644)
        size = os.fstat(self._log_fd).st_size
        if position is None or size == 0:
            return None
        (seq, at), records = position, []
        with mmap.mmap(self._log_fd, size, access=mmap.ACCESS_READ) as view:
            while at + _HEAD.size <= size:
                length, crc, number = _HEAD.unpack_from(view, at)
                end = at + _HEAD.size + length
                if number != seq or length == 0 or end > size:
                    break
                body = view[at + _HEAD.size:end]
                if zlib.crc32(body) != crc:   # torn by a kill mid-append: the replay ends, as at a stale one
                    break
                records.append(self._decoded(body, number))
                seq, at = seq + 1, end
        return records, seq, at

    def _decoded(self, body: bytes, number: int) -> list:
        """A logged record's rows, checked as far as applying and loading them relies on. The header
        is written after the body, so a record whose number and checksum hold was written whole: one
        that does not decode is damage, or another database's log, not a kill."""
        try:
            rows = marshal.loads(body)
            for row, value in rows:
                if not _is_row(row, value):
                    raise ValueError(f"not a row: {row!r:.60}")
                if value is not None:
                    json.loads(value[1])
        except (ValueError, TypeError, EOFError, RecursionError) as exc:
            raise StateError(f"{self.path}-log: not a usable log of this state file (record {number}: "
                             f"{_line(exc)})") from None
        return rows

    def _open_log(self, position: tuple[int, int] | None, replay: tuple[list, int, int] | None) -> None:
        if replay is None:
            # a new file, one an older sandbox wrote, or a log gone missing: whatever log lies
            # beside it is not this database's, and a fresh one starts at its beginning
            os.ftruncate(self._log_fd, 0)
            position = (position[0] if position else 1, 0)
            self._set_position(*position)
            replay = [], *position
        size = os.fstat(self._log_fd).st_size
        if size < LOG_SIZE:
            # allocated now, so a full disk fails here and not as a crash on writing to the mapping
            try:
                os.posix_fallocate(self._log_fd, 0, LOG_SIZE)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):   # a file system without it
                    raise
                os.ftruncate(self._log_fd, LOG_SIZE)
            size = LOG_SIZE
        self._log = mmap.mmap(self._log_fd, size)
        records, seq, at = replay
        self._tail, self._seq, self._lap = at, seq, 0   # where the next record goes, and its number
        self._applied = position[1]
        if records:
            self._apply(records, seq, at)
            self._applied = at

    def _set_position(self, seq: int, offset: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO log_position (id, seq, offset) VALUES (0, ?, ?)", (seq, offset))

    def _append(self, rows: list[tuple[tuple, tuple | None]]) -> None:
        """Log ``rows`` as one record: from here on they survive a kill. The caller holds the lock."""
        body = marshal.dumps(rows)
        size = _HEAD.size + len(body)
        if self._tail + size > len(self._log):
            self._drain()
            with self._db_lock:
                if size > len(self._log):   # larger than the whole log: straight to SQLite
                    self._apply([rows], self._seq, self._tail)
                    self._applied = self._tail
                    return
                # everything is applied: the log starts over, the position first
                self._set_position(self._seq, 0)
                self._applied = self._tail = 0
                self._lap += 1
        self._log[self._tail + _HEAD.size:self._tail + size] = body
        _HEAD.pack_into(self._log, self._tail, len(body), zlib.crc32(body), self._seq)
        self._tail += size
        self._seq += 1

    def _records(self, start: int, end: int) -> list[list]:
        records = []
        while start < end:
            length = _HEAD.unpack_from(self._log, start)[0]
            records.append(marshal.loads(self._log[start + _HEAD.size:start + _HEAD.size + length]))
            start += _HEAD.size + length
        return records

    def _apply(self, records: list[list], seq: int, offset: int) -> None:
        """One transaction: the rows of these records, in their order, and the log position after
        them. The caller holds ``_db_lock``."""
        latest: dict[tuple, tuple | None] = {}
        recreated = []
        for rows in records:
            for row, value in rows:
                if value is not None and row in latest and latest[row] is None:
                    # deleted, then written again: deleted first, then stored as a new row
                    recreated.append(row)
                    del latest[row]
                latest[row] = value
        tables: dict[tuple[str, bool], list] = {}
        for row in recreated:
            tables.setdefault((row[0], False), []).append(row[1:])
        for row, value in latest.items():
            if value is None:
                tables.setdefault((row[0], False), []).append(row[1:])
            else:
                tables.setdefault((row[0], True), []).append((*row[1:], *value))
        with self.db:
            self.db.execute("BEGIN")
            for kept in (False, True):   # deletions before writes: a recreated row is a new one
                for table in ("o", "r"):
                    found = tables.get((table, kept))
                    if found:
                        self.db.execute(_APPLY[table, kept], (json.dumps(found, ensure_ascii=False),))
            self._set_position(seq, offset)

    def _catch_up(self) -> None:
        """Apply what the log gathered so far (the applier's round)."""
        with self._lock:
            lap, end, seq = self._lap, self._tail, self._seq
        with self._db_lock:
            if lap != self._lap or self._applied >= end:   # the log started over meanwhile: all applied
                return
            self._apply(self._records(self._applied, end), seq, end)
            self._applied = end

    def _drain(self) -> None:
        """Apply everything logged. The caller holds the lock, so nothing is appended meanwhile."""
        with self._db_lock:
            if self._applied < self._tail:
                try:
                    self._apply(self._records(self._applied, self._tail), self._seq, self._tail)
                except Exception as exc:
                    raise StateError(f"{self.path}: logged rows not applied ({exc})") from exc
                self._applied = self._tail

    def _apply_loop(self) -> None:
        checkpointed = time.monotonic()
        failing = False
        while not self._stopping.wait(APPLY_EVERY):
            try:
                self._catch_up()
                if time.monotonic() - checkpointed >= CHECKPOINT_EVERY:
                    with self._db_lock:
                        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    checkpointed = time.monotonic()
            except Exception:   # the rows stay in the log: the next round, or a restart, applies them
                if not failing:   # once, not twenty times a second while the disk stays full
                    log.exception("%s: applying the log failed; retrying", self.path)
                failing = True
            else:
                if failing:
                    log.warning("%s: the log is applied again", self.path)
                failing = False

    # -- records -----------------------------------------------------------------------------
    def get(self, space: str, key: str, default: Any = None) -> Any:
        found = self.execute("SELECT data FROM records WHERE space = ? AND key = ?", (space, key))
        return self._loads(space, key, found[0][0]) if found else default

    def _loads(self, space: str, key: str, data: str) -> Any:
        try:
            return json.loads(data)
        except (TypeError, ValueError, RecursionError) as exc:   # a row start-up did not check
            raise StateError(f"{self.path}: not a usable state file (records {space} {key}: {_line(exc)})") from None

    def put(self, space: str, key: str, value: Any, tenant: str | None = None, *, now: bool = False) -> None:
        """``now``: logged at once even inside a request (what other requests rely on at once)."""
        self.write(("r", space, key), (tenant, json.dumps(value, separators=(",", ":"))), now=now)

    def delete(self, space: str, key: str) -> None:
        self.write(("r", space, key), None)

    # -- batching ----------------------------------------------------------------------------
    def write(self, row: tuple, value: tuple | None, now: bool = False) -> None:
        """Change one row (``value`` None deletes it): at once outside a request, at ``commit``
        inside one. A ``Deferred`` value's lock must be held by the caller when it is logged at once."""
        rows = None if now else getattr(self._batch, "rows", None)
        with self._lock:
            self._latest[row] = value
            if rows is None:
                self._enqueue((row,))
                return
        rows.append(row)

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
                        self._enqueue(rows)
                        return
            finally:
                for lock in locks.values():
                    lock.release()
            locks.update(more)

    @contextmanager
    def together(self):
        """The rows changed inside are logged as one record as the block ends (inside a request,
        with the request's): a kill never leaves one of them without the others."""
        if getattr(self._batch, "rows", None) is not None:
            yield
            return
        self.begin()
        try:
            yield
        finally:
            self.commit()

    def _deferred(self, rows) -> list[Deferred]:
        return [p for row in rows if self._latest.get(row) is not None
                for p in self._latest[row] if isinstance(p, Deferred)]

    def _enqueue(self, rows) -> None:
        """Log the newest version of ``rows``. The caller holds the lock, and the lock of every
        deferred value among them. A row another thread already took is logged in a version at
        least as new."""
        todo = [(row, _computed(self._latest.pop(row))) for row in dict.fromkeys(rows) if row in self._latest]
        if todo:
            self._append(todo)

    def _forget(self, match) -> None:
        # caller holds the lock: rows a bulk delete removes must not be logged after it
        for row in [row for row in self._latest if match(row)]:
            del self._latest[row]

    def rows(self, space: str) -> Iterator[tuple[str, str | None, Any]]:
        found = self.execute("SELECT key, tenant, data FROM records WHERE space = ? ORDER BY rowid", (space,))
        return ((key, tenant, self._loads(space, key, data)) for key, tenant, data in found)

    def clear(self, space: str, tenant: str | None = None) -> None:
        with self._lock:
            self._forget(lambda row: row[0] == "r" and row[1] == space
                         and (tenant is None or self._latest[row] is None or self._latest[row][0] == tenant))
            self._drain()   # a logged row must not be applied after the delete
            with self._db_lock:
                if tenant is None:
                    self.db.execute("DELETE FROM records WHERE space = ?", (space,))
                else:
                    self.db.execute("DELETE FROM records WHERE space = ? AND tenant = ?", (space, tenant))

    # -- objects (the store's own table) -----------------------------------------------------
    def execute(self, sql: str, params: tuple = ()) -> list:
        """``sql``'s rows, read once everything logged is applied."""
        with self._lock:
            self._drain()
            with self._db_lock:
                try:
                    return self.db.execute(sql, params).fetchall()
                except self._db_error as exc:   # another program's lock on the file, a failing disk
                    raise StateError(f"{self.path}: reading the state file failed ({_line(exc)})") from None

    def clear_objects(self) -> None:
        with self._lock:
            self._forget(lambda row: row[0] == "o")
            self._drain()
            with self._db_lock:
                self.db.execute("DELETE FROM objects")

    def _release(self) -> None:
        # every descriptor closes together: closing any descriptor of the file drops SQLite's locks
        if self._log is not None:
            self._log.close()
        if self._log_fd is not None:
            os.close(self._log_fd)
        connection = getattr(self, "db", None)
        if connection is not None:
            connection.close()
        os.close(self._fd)

    def close(self) -> None:
        stopping = getattr(self, "_stopping", None)
        if stopping is not None:
            stopping.set()
            self._applier.join(timeout=5)
        with self._lock:
            if self._fd is not None:
                self._drain()
                with self._db_lock:
                    self._release()
                    # everything is in the database: the log goes, as SQLite's own -wal does
                    os.unlink(self.path + "-log")
                self._fd = None
