"""SQLite access: one connection per thread, WAL, foreign keys, serialised writers.

Every statement the app runs goes through :class:`Database` with ``?`` placeholders — never
string formatting of values. Writes run inside :meth:`Database.write`, which takes an in-process
lock (so threads of one process never race for SQLite's write lock) and ``BEGIN IMMEDIATE`` with a
busy timeout plus retries (so a second process, e.g. a headless server beside the GUI, waits
instead of surfacing "database is locked" to a user).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
LOCK_RETRIES = 8


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection with the pragmas every cspine connection needs (autocommit mode)."""
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_MS)}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class Database:
    """Thread-safe handle on one SQLite file.

    ``read()`` yields this thread's connection (autocommit: each statement sees the latest
    committed state; wrap several reads in ``read(snapshot=True)`` for one consistent view).
    ``write()`` yields the connection inside an IMMEDIATE transaction that commits on normal exit
    and rolls back on any exception.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False
        first = self._conn()
        mode = first.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # pragma: no cover - e.g. a network filesystem
            log.warning("SQLite journal_mode is %s, not WAL", mode)

    # ------------------------------------------------------------------ connections
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("database is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this handle opened (call once, at shutdown)."""
        with self._all_lock:
            conns, self._all = self._all, []
            self._closed = True
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def read(self, snapshot: bool = False) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        if conn.in_transaction or not snapshot:
            yield conn
            return
        conn.execute("BEGIN DEFERRED")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        if conn.in_transaction:  # nested: join the outer transaction
            yield conn
            return
        with self._write_lock:
            self._begin_immediate(conn)
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                self._commit(conn)

    def _begin_immediate(self, conn: sqlite3.Connection) -> None:
        for attempt in range(LOCK_RETRIES):
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc) or attempt == LOCK_RETRIES - 1:
                    raise
                log.warning("database busy (another process is writing); retrying")
                time.sleep(0.05 * 2**attempt)

    def _commit(self, conn: sqlite3.Connection) -> None:
        for attempt in range(LOCK_RETRIES):
            try:
                conn.execute("COMMIT")
                return
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc) or attempt == LOCK_RETRIES - 1:
                    conn.execute("ROLLBACK")
                    raise
                time.sleep(0.05 * 2**attempt)

    # ------------------------------------------------------------------ helpers
    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self.read() as conn:
            return conn.execute(sql, params).fetchall()

    def query_one(
        self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()
    ) -> sqlite3.Row | None:
        with self.read() as conn:
            return conn.execute(sql, params).fetchone()

    def query_count(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> int:
        """The number an aggregate query (``SELECT COUNT(*) ...``) returns: always one row."""
        row = self.query_one(sql, params)
        assert row is not None, "an aggregate query returns one row"
        return int(row[0])

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> int:
        """Run one write statement in its own transaction; returns the number of changed rows."""
        with self.write() as conn:
            return conn.execute(sql, params).rowcount

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` result: ``"ok"`` when the file is sound."""
        rows = self.query("PRAGMA integrity_check")
        return "; ".join(str(r[0]) for r in rows)
