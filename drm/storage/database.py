"""The database behind drm/, whichever engine holds it: the embedded SQLite file or a shared PostgreSQL.

Stores take a :class:`Database` and write through units of work::

    with db.transaction() as tx:
        tx.lock(f"payment:{payment_id}")
        tx.execute("INSERT INTO payment_events ... ON CONFLICT (...) DO NOTHING", (...))
        entitlements.grant_within(tx, viewer_id, series_id, ...)

so a payment and its grant commit together on either engine. SQL is written once, with ``?``
placeholders, in the subset both engines agree on (``ON CONFLICT`` upserts included); where they
differ, the :class:`Dialect` says how (column types in DDL, ``FOR UPDATE``, the two-argument
maximum). Isolation on PostgreSQL is READ COMMITTED; the writes that must not interleave take a
:meth:`Transaction.lock` or a row lock, so results match SQLite, where a write transaction
(``BEGIN IMMEDIATE``) excludes every other writer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

POSTGRESQL_SCHEMES = ("postgresql://", "postgres://")


class Row(Protocol):
    """A result row: by position (``row[0]``, tuple unpacking) and by column name (``row["key_id"]``);
    ``dict(row)`` maps names to values. sqlite3.Row on SQLite, the same shape on PostgreSQL."""

    def __getitem__(self, key: int | str) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...
    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    """What Transaction.execute returns: rows changed, and the statement's rows if it has any."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Dialect:
    """Where the two engines' SQL differs, spelled once per engine.

    ``types`` fill the ``{text}``, ``{real}``, ``{blob}`` and ``{identity}`` fields of schema
    templates (see :meth:`render`).
    """

    name: str                   # "sqlite" | "postgresql"
    types: Mapping[str, str]
    for_update: str             # appended to a SELECT that must lock the rows it reads
    greatest: str               # the scalar maximum of two values: MAX(a, b) / GREATEST(a, b)

    def render(self, template: str) -> str:
        """A schema template with this engine's column types filled in."""
        return template.format_map(self.types)


SQLITE = Dialect(
    name="sqlite",
    types={"text": "TEXT", "real": "REAL", "blob": "BLOB", "identity": "INTEGER PRIMARY KEY AUTOINCREMENT"},
    # No row locks in SQLite: a write transaction (BEGIN IMMEDIATE) already excludes every other writer.
    for_update="",
    greatest="MAX",
)
POSTGRESQL = Dialect(
    name="postgresql",
    types={
        # Byte order, as SQLite's BINARY collation: ids sort the same on both engines, whatever the
        # database's locale, and comparisons skip the locale's rules.
        "text": 'TEXT COLLATE "C"',
        "real": "DOUBLE PRECISION",   # PostgreSQL's REAL is 4 bytes: unix seconds would lose minutes
        "blob": "BYTEA",
        "identity": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    },
    for_update=" FOR UPDATE",
    greatest="GREATEST",
)


class Transaction(ABC):
    """One unit of work: everything executed through it commits together or not at all."""

    dialect: Dialect

    @abstractmethod
    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        """Run one statement with ``?`` placeholders; its cursor gives rowcount and rows."""

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run one statement per parameter row; the total number of rows changed."""

    @abstractmethod
    def execute_script(self, script: str) -> None:
        """Run several parameterless statements (schema changes) separated by ``;``."""

    @abstractmethod
    def lock(self, name: str) -> None:
        """Wait until no other transaction holds the lock ``name``, and hold it until this one ends.

        For writes that read, decide, then write and must not interleave with another doing the
        same (two deliveries of one payment event). Take several in a fixed order to avoid
        deadlocks. SQLite: nothing to do (its write transactions already run one at a time).
        """

    def fetch_one(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        """The statement's first row, or None."""
        return self.execute(sql, parameters).fetchone()

    def fetch_all(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        return self.execute(sql, parameters).fetchall()


class ChangeListener(ABC):
    """One connection of its own (never a pooled one) LISTENing on a channel; used by one thread.

    ``listen()`` (re)connects and subscribes; ``wait()`` returns the payloads that arrived. Both raise
    DatabaseUnavailable when the server cannot be reached or the connection is lost: notifications
    sent meanwhile are gone, so a reader polls what it may have missed after every ``listen()``.
    A context manager: leaving it closes the connection.
    """

    def __enter__(self) -> ChangeListener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abstractmethod
    def listen(self) -> None:
        """Connect (again, if the connection was lost) and subscribe to the channel."""

    @abstractmethod
    def wait(self, timeout_s: float) -> list[str]:
        """The payloads received within ``timeout_s`` seconds (returns at the first batch, or empty)."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection (from the thread that uses it). Idempotent; listen() opens a new one."""


class Database(ABC):
    """A drm database: write transactions and single reads, safe to share between threads."""

    dialect: Dialect

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction for the block: commits on normal exit, rolls back and re-raises on any
        exception. Not nestable."""

    @abstractmethod
    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        """Run one read statement and return all its rows."""

    def query_one(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        rows = self.query(sql, parameters)
        return rows[0] if rows else None

    @abstractmethod
    def describe(self) -> str:
        """Where the database is, for messages: a file path, or a URL without its password."""

    def listener(self, channel: str) -> ChangeListener | None:
        """A dedicated connection that receives this database's notifications on ``channel``, or None
        for an engine without notifications (SQLite: readers poll instead)."""
        return None

    @abstractmethod
    def close(self) -> None:
        """Release connections; the Database is unusable afterwards. Idempotent."""

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def redact_url(url: str) -> str:
    """A database URL without its password (in the user part or a ``password=`` parameter), for messages
    and reprs. Anything that does not parse as a URL comes back as a placeholder, never as given."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[1]}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(name, "***" if name == "password" else value) for name, value in pairs], safe="*")
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "(a database URL that does not parse)"
