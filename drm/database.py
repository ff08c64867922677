"""The SQLite file behind drm/: connection settings, schema, and a locked transaction helper."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import DrmError

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS content_keys (
    key_id        TEXT PRIMARY KEY,
    series_id     TEXT NOT NULL,
    episode_id    TEXT NOT NULL,
    period        INTEGER NOT NULL,
    wrapped       BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    created_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS content_keys_episode ON content_keys (series_id, episode_id);
CREATE INDEX IF NOT EXISTS content_keys_master ON content_keys (master_key_id);
CREATE TABLE IF NOT EXISTS content_key_versions (
    key_id     TEXT PRIMARY KEY REFERENCES content_keys (key_id) ON DELETE CASCADE,
    series_id  TEXT NOT NULL,
    episode_id TEXT NOT NULL,
    version    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS content_key_versions_episode ON content_key_versions (series_id, episode_id, version);
CREATE TABLE IF NOT EXISTS entitlements (
    viewer_id  TEXT NOT NULL,
    series_id  TEXT NOT NULL,
    source     TEXT NOT NULL,
    granted_at REAL NOT NULL,
    revoked_at REAL NULL,
    reason     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (viewer_id, series_id)
);
"""

# Applied in order to a file at version (index + 1); a fresh file gets _SCHEMA (version 1) and then all of them.
_MIGRATIONS = (
    # v2: the catalog, creators' eligibility, payments, and an audit trail of entitlement changes.
    """
    ALTER TABLE entitlements ADD COLUMN reference TEXT NOT NULL DEFAULT '';
    CREATE TABLE series (
        series_id    TEXT PRIMARY KEY,
        creator_id   TEXT NOT NULL,
        title        TEXT NOT NULL,
        price_cents  INTEGER NOT NULL CHECK (price_cents BETWEEN 100 AND 19000),
        currency     TEXT NOT NULL,
        created_at   REAL NOT NULL,
        updated_at   REAL NOT NULL
    );
    CREATE INDEX series_creator ON series (creator_id);
    CREATE TABLE episodes (
        series_id         TEXT NOT NULL REFERENCES series (series_id),
        episode_id        TEXT NOT NULL,
        duration_s        REAL NOT NULL,
        is_free_preview   INTEGER NOT NULL DEFAULT 0,
        published_version INTEGER NULL,
        created_at        REAL NOT NULL,
        updated_at        REAL NOT NULL,
        PRIMARY KEY (series_id, episode_id)
    );
    CREATE TABLE creators (
        creator_id          TEXT PRIMARY KEY,
        status              TEXT NOT NULL,
        profile             TEXT NOT NULL,
        unmet               TEXT NOT NULL,
        premium_content_url TEXT NOT NULL DEFAULT '',
        decided_by          TEXT NOT NULL DEFAULT '',
        reason              TEXT NOT NULL DEFAULT '',
        updated_at          REAL NOT NULL
    );
    CREATE TABLE payments (
        payment_id   TEXT PRIMARY KEY,
        viewer_id    TEXT NOT NULL,
        series_id    TEXT NOT NULL,
        status       TEXT NOT NULL,
        amount_cents INTEGER NOT NULL,
        currency     TEXT NOT NULL,
        updated_at   REAL NOT NULL
    );
    CREATE TABLE payment_events (
        payment_id  TEXT NOT NULL,
        event_type  TEXT NOT NULL,
        event_id    TEXT NOT NULL,
        received_at REAL NOT NULL,
        PRIMARY KEY (payment_id, event_type)
    );
    CREATE TABLE entitlement_events (
        event_id   INTEGER PRIMARY KEY AUTOINCREMENT,
        viewer_id  TEXT NOT NULL,
        series_id  TEXT NOT NULL,
        action     TEXT NOT NULL,
        source     TEXT NOT NULL,
        reason     TEXT NOT NULL,
        actor      TEXT NOT NULL,
        reference  TEXT NOT NULL,
        at         REAL NOT NULL
    );
    CREATE INDEX entitlement_events_pair ON entitlement_events (viewer_id, series_id);
    """,
)


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating if needed) the drm database at ``path`` and apply the schema.

    The connection may be shared between threads (``check_same_thread=False``) but
    is not safe to use concurrently: wrap it in :class:`Database`, which serializes
    access. ``isolation_level=None`` means no implicit transactions: writers use
    ``Database.transaction()``. ``":memory:"`` is accepted for throwaway use.

    Raises DrmError if the file's schema is newer than this code understands, and
    sqlite3.Error if the file cannot be opened.
    """
    target = os.fspath(path)
    if target != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        # busy_timeout first: switching to WAL needs a lock another process may hold.
        # The pragmas precede BEGIN because journal_mode cannot change inside a transaction.
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        _apply_schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _apply_schema(conn: sqlite3.Connection) -> None:
    # BEGIN IMMEDIATE so two processes opening a fresh file at once do not race on the DDL.
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO schema_version (id, version) VALUES (1, 1)")
        (found,) = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
        if found > SCHEMA_VERSION:
            raise DrmError(
                f"drm database schema version {found} is newer than this code's "
                f"{SCHEMA_VERSION}; upgrade the service before opening it"
            )
        for version, migration in enumerate(_MIGRATIONS, start=2):
            if found < version:
                for statement in migration.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = ? WHERE id = 1", (version,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class Database:
    """One drm connection plus the lock that serializes its use across threads.

    Stores share a Database; every statement sequence goes through
    :meth:`transaction` (writes) or :meth:`query` (single reads).
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        # Re-entrant so a query() inside a transaction() on the same thread does not deadlock.
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Database:
        """Connect to ``path`` (see :func:`connect`) and wrap the connection."""
        return cls(connect(path))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and a ``BEGIN IMMEDIATE`` write transaction for the block.

        Commits on normal exit, rolls back and re-raises on any exception.
        Not nestable: a nested call raises sqlite3.OperationalError.
        """
        with self._lock:
            self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
                self.connection.execute("COMMIT")
            except BaseException:
                # Also reached when COMMIT itself fails (SQLITE_BUSY), which leaves the
                # transaction open; without this the next BEGIN would fail.
                if self.connection.in_transaction:
                    self.connection.execute("ROLLBACK")
                raise

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Run one read statement under the lock and return all its rows."""
        with self._lock:
            return self.connection.execute(sql, parameters).fetchall()

    @property
    def own_changes(self) -> int:
        """Rows changed through this connection so far (sqlite3_total_changes): a counter read
        without the lock or any I/O, cheap enough to check on every request."""
        return self.connection.total_changes

    def change_marker(self) -> tuple[int, int]:
        """A value that differs whenever any committed write happened since it was last read.

        PRAGMA data_version moves on commits by other connections (other processes), and
        total_changes on this connection's own writes; neither alone sees both.
        """
        with self._lock:
            (data_version,) = self.connection.execute("PRAGMA data_version").fetchone()
            return data_version, self.connection.total_changes

    def close(self) -> None:
        """Close the connection; the Database is unusable afterwards. Idempotent."""
        with self._lock:
            self.connection.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
