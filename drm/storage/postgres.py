"""The shared engine: PostgreSQL through psycopg 3 and a bounded connection pool.

The only module that imports psycopg. Pooled connections run in autocommit, so a single read is
one round trip; a unit of work is an explicit BEGIN ... COMMIT at READ COMMITTED, with advisory
locks (:meth:`PostgresTransaction.lock`) where a read-decide-write must not interleave. psycopg's
errors enter here and leave as DrmError: a lost or refused connection is DatabaseUnavailable.

After a server restart every pooled connection is dead. A read, or a transaction whose BEGIN
fails, has the pool check its idle connections and tries once more, so a restart costs callers
nothing but a reconnect; a transaction that fails after its BEGIN is never replayed.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool

from drm.errors import DatabaseUnavailable, DrmError
from drm.storage.database import POSTGRESQL, ChangeListener, Database, Transaction, redact_url

log = logging.getLogger(__name__)

ACQUIRE_TIMEOUT_S = 5.0     # how long a caller waits for a pooled connection before DatabaseUnavailable
CONNECT_TIMEOUT_S = 5
_LOCK_NAMESPACE = 0x5E21E5  # first key of our two-key advisory locks: other users of one-key locks never collide


class PostgresTransaction(Transaction):
    dialect = POSTGRESQL

    def __init__(self, connection: psycopg.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> psycopg.Cursor:
        return self._connection.execute(_placeholders(sql), parameters)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        with self._connection.cursor() as cursor:
            cursor.executemany(_placeholders(sql), rows)
            return cursor.rowcount   # the sum over all rows (psycopg >= 3.1)

    def execute_script(self, script: str) -> None:
        # Without parameters, psycopg sends the text as one simple query: several statements, and
        # function bodies ($$ ... ; ... $$) intact.
        self._connection.execute(script.encode())

    def lock(self, name: str) -> None:
        """A transaction-scoped advisory lock on ``name`` (released at COMMIT or ROLLBACK)."""
        self._connection.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_NAMESPACE, name))


class PostgresDatabase(Database):
    """A pool of up to ``max_size`` connections to the database at ``url``; thread-safe."""

    dialect = POSTGRESQL

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10,
                 acquire_timeout_s: float = ACQUIRE_TIMEOUT_S) -> None:
        self._url = url
        self._where = redact_url(url)
        self._pool = psycopg_pool.ConnectionPool(
            url, min_size=min(min_size, max_size), max_size=max_size, open=False, name="drm",
            timeout=acquire_timeout_s,
            kwargs={"autocommit": True, "row_factory": _rows, "connect_timeout": CONNECT_TIMEOUT_S,
                    "application_name": "series"},
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            raise DatabaseUnavailable(
                f"cannot connect to {self._where} within {CONNECT_TIMEOUT_S} s: is PostgreSQL running "
                "and the URL right?") from exc

    @contextmanager
    def transaction(self) -> Iterator[PostgresTransaction]:
        """BEGIN ... COMMIT on one pooled connection; rolls back and re-raises on any exception.

        Raises DatabaseUnavailable when no connection can be had or it is lost (if that happens at
        COMMIT, the outcome is unknown: callers' writes are idempotent or checked on retry).
        """
        with self._connection(begin=True) as connection:
            try:
                yield PostgresTransaction(connection)
            except BaseException:
                if not connection.broken:
                    with _translated(self._where):
                        connection.execute("ROLLBACK")
                raise
            with _translated(self._where):
                connection.execute("COMMIT")

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        """One read statement in autocommit; retried once on a connection the server dropped."""
        statement = _placeholders(sql)
        return self._with_retry(lambda connection: connection.execute(statement, parameters).fetchall())

    def describe(self) -> str:
        return self._where

    def listener(self, channel: str) -> PostgresListener:
        return PostgresListener(self._url, channel)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _connection(self, *, begin: bool) -> Iterator[psycopg.Connection]:
        def take(connection: psycopg.Connection) -> psycopg.Connection:
            if begin:
                connection.execute("BEGIN")
            return connection

        connection = self._with_retry(take, keep=True)
        try:
            with _translated(self._where):
                yield connection
        finally:
            self._pool.putconn(connection)   # a broken one is discarded; an open transaction rolled back

    def _with_retry(self, work: Callable[[psycopg.Connection], Any], *, keep: bool = False) -> Any:
        """Run ``work`` on a pooled connection; when it fails because that connection was dead,
        have the pool check its idle ones and run it once more. With ``keep`` the connection is
        returned (the caller puts it back), else ``work``'s result."""
        for attempt in (1, 2):
            with _translated(self._where):
                connection = self._pool.getconn()
            try:
                result = work(connection)
            except BaseException as exc:
                self._pool.putconn(connection)
                if isinstance(exc, psycopg.OperationalError) and connection.broken and attempt == 1:
                    log.info("a pooled connection to %s was dead (%s); checking the pool", self._where, exc)
                    with _translated(self._where):
                        self._pool.check()
                    continue
                with _translated(self._where):
                    raise
            if keep:
                return connection
            self._pool.putconn(connection)
            return result
        raise AssertionError("unreachable")


redacted = redact_url     # the name this module gave it first


class PostgresListener(ChangeListener):
    """LISTEN on a connection of its own, outside the pool: a pooled connection is handed to other work
    between uses (and a transaction-mode PgBouncer would drop the subscription), while notifications
    arrive only on the session that listens.

    Its application_name is ``series-listen-<pid>``, so an operator (or a test) can find it in
    pg_stat_activity. Used by one thread: wait() in short slices and check for shutdown in between
    (closing a connection another thread is waiting on would race on its socket).
    """

    def __init__(self, url: str, channel: str) -> None:
        if not channel.isidentifier():
            raise ValueError(f"channel {channel!r} is not a plain identifier")
        self._url, self._channel = url, channel
        self._where = redact_url(url)
        self._connection: psycopg.Connection | None = None

    @property
    def application_name(self) -> str:
        return f"series-listen-{os.getpid()}"

    def listen(self) -> None:
        self.close()
        with _translated(self._where):
            connection = psycopg.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                         application_name=self.application_name)
            try:
                connection.execute(f"LISTEN {self._channel}")
            except BaseException:
                connection.close()
                raise
        self._connection = connection

    def wait(self, timeout_s: float) -> list[str]:
        connection = self._connection
        if connection is None:
            raise DatabaseUnavailable(f"{self._where}: not listening; call listen() first")
        with _translated(self._where):
            # the first notification ends the wait; others that came in the same packet come with it
            payloads = [notify.payload for notify in connection.notifies(timeout=timeout_s, stop_after=1)]
            if connection.broken:
                raise psycopg.OperationalError("the listening connection was lost")
        return payloads

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


@contextmanager
def _translated(where: str) -> Iterator[None]:
    try:
        yield
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg_pool.PoolClosed) as exc:
        raise DatabaseUnavailable(f"{where}: {_first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise DrmError(f"{where}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@functools.lru_cache(maxsize=1024)
def _placeholders(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` doubled), outside quoted text."""
    out, quote = [], ""
    for char in sql:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        if char == "%":
            out.append("%%")
            continue
        out.append(char)
    return "".join(out)


@functools.lru_cache(maxsize=256)
def _row_type(names: tuple[str, ...]) -> type:
    index = {name: position for position, name in enumerate(names)}

    class Row(tuple):
        """A tuple that also answers row["column"] and keys(), like sqlite3.Row."""

        __slots__ = ()

        def __getitem__(self, key):
            if isinstance(key, str):
                return tuple.__getitem__(self, index[key])
            return tuple.__getitem__(self, key)

        def keys(self) -> list[str]:
            return list(names)

    return Row


def _rows(cursor: psycopg.Cursor) -> Callable[[Sequence[Any]], Any]:
    if cursor.description is None:
        return tuple
    return _row_type(tuple(column.name for column in cursor.description))
