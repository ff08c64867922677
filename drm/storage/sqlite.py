"""The embedded engine: one SQLite file, one connection per Database, serialized by a lock.

The zero-set-up default (`./run demo`). Several processes may share the file: WAL lets readers
run beside the one writer, and every write transaction is ``BEGIN IMMEDIATE``, so writers queue
(up to the busy timeout) instead of failing halfway.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from drm.storage.database import SQLITE, Database, Transaction
from drm.storage.migrations import migrate

BUSY_TIMEOUT_MS = 5000


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating if needed) the drm SQLite file at ``path`` and bring its schema up to date.

    The connection may be shared between threads (``check_same_thread=False``) but is not safe to
    use concurrently: :class:`SqliteDatabase` wraps it with a lock. ``isolation_level=None`` means
    no implicit transactions: writers use ``transaction()``. ``":memory:"`` is accepted for
    throwaway use. Raises SchemaTooNew if the file is ahead of this code, sqlite3.Error if it
    cannot be opened.
    """
    db = SqliteDatabase.connect_file(path)
    try:
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db.connection


class SqliteTransaction(Transaction):
    dialect = SQLITE

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._connection.execute(sql, parameters)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        # sqlite3 sums the rows changed by every execution into rowcount
        return self._connection.executemany(sql, rows).rowcount if rows else 0

    def execute_script(self, script: str) -> None:
        # Not executescript(): it commits first, and the script must be part of this transaction.
        for statement in script.split(";"):
            if statement.strip():
                self._connection.execute(statement)

    def lock(self, name: str) -> None:
        """Nothing to take: BEGIN IMMEDIATE already made this the only write transaction."""


class SqliteDatabase(Database):
    """One SQLite connection plus the lock that serializes its use across threads."""

    dialect = SQLITE

    def __init__(self, connection: sqlite3.Connection, path: str = "") -> None:
        self.connection = connection
        self._path = path
        # Re-entrant so a query() inside a transaction() on the same thread does not deadlock.
        self._lock = threading.RLock()

    @classmethod
    def connect_file(cls, path: str | os.PathLike[str], *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> SqliteDatabase:
        """Open (creating if needed) the file with the connection settings, without touching the schema.

        ``busy_timeout_ms``: how long a statement waits for another connection's write lock before
        sqlite3.OperationalError ("database is locked").
        """
        target = os.fspath(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            # busy_timeout first: switching to WAL needs a lock another process may hold.
            # The pragmas precede BEGIN because journal_mode cannot change inside a transaction.
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            conn.close()
            raise
        return cls(conn, target)

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        """Hold the lock and a ``BEGIN IMMEDIATE`` write transaction for the block.

        Commits on normal exit, rolls back and re-raises on any exception.
        Not nestable: a nested call raises sqlite3.OperationalError.
        """
        with self._lock:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield SqliteTransaction(self.connection)
                self.connection.execute("COMMIT")
            except BaseException:
                # Also reached when COMMIT itself fails (SQLITE_BUSY), which leaves the
                # transaction open; without this the next BEGIN would fail.
                if self.connection.in_transaction:
                    self.connection.execute("ROLLBACK")
                raise

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one read statement under the lock and return all its rows."""
        with self._lock:
            return self.connection.execute(sql, parameters).fetchall()

    def describe(self) -> str:
        return self._path or "(sqlite)"

    def close(self) -> None:
        """Close the connection; the Database is unusable afterwards. Idempotent."""
        with self._lock:
            self.connection.close()
