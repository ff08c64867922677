"""Which database a target names, opened and checked: open_database() for the stores, connect_database()
for migrate(). A ``postgresql://`` URL is PostgreSQL (drm/storage/postgres.py, imported only then, so the
embedded default never loads psycopg); anything else is a SQLite file path (drm/storage/sqlite.py)."""

from __future__ import annotations

import os

from drm.errors import DrmError
from drm.storage.database import POSTGRESQL_SCHEMES, Database
from drm.storage.migrations import check_schema
from drm.storage.migrations import migrate as apply_migrations
from drm.storage.sqlite import BUSY_TIMEOUT_MS


def open_database(target: str | os.PathLike[str], *, migrate: bool | None = None,
                  pool_max_size: int = 10, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Database:
    """Open the database ``target`` names (see connect_database()) and check its schema.

    ``migrate`` decides what happens at an older schema: True upgrades it, False refuses with
    SchemaNotMigrated. None takes the engine's way: the embedded SQLite file upgrades itself,
    as it always has (one host, and BEGIN IMMEDIATE serializes openers); PostgreSQL refuses,
    because several instances must not race on schema changes and an operator should choose
    when they happen (``series db migrate``). A schema newer than this code raises
    SchemaTooNew either way.
    """
    db = connect_database(target, pool_max_size=pool_max_size, busy_timeout_ms=busy_timeout_ms)
    try:
        if migrate or (migrate is None and db.dialect.name == "sqlite"):
            apply_migrations(db)
        else:
            check_schema(db)
    except BaseException:
        db.close()
        raise
    return db


def connect_database(target: str | os.PathLike[str], *, pool_max_size: int = 10,
                     busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Database:
    """Connect to ``target`` without looking at its schema (for migrate()): a ``postgresql://``
    URL, or else a SQLite file path (created if missing).

    ``pool_max_size`` bounds PostgreSQL connections; threads beyond it wait. ``busy_timeout_ms`` is
    how long a SQLite statement waits for another process's write lock (PostgreSQL waits for row
    and advisory locks as long as they are held). Raises
    DatabaseUnavailable when PostgreSQL cannot be reached, DrmError for an unsupported URL,
    sqlite3.Error when the file cannot be opened.
    """
    location = os.fspath(target)
    if location.startswith(POSTGRESQL_SCHEMES):
        from drm.storage.postgres import PostgresDatabase

        return PostgresDatabase(location, max_size=pool_max_size)
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise DrmError(f"database URL scheme {scheme!r} is not supported; use postgresql://… or a file path")
    from drm.storage.sqlite import SqliteDatabase

    return SqliteDatabase.connect_file(location, busy_timeout_ms=busy_timeout_ms)
