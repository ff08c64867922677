"""Versioned schema migrations of the drm database, for SQLite and PostgreSQL alike.

A small ordered list rather than a migration library: the schema is a dozen tables written in the
SQL both engines share, the SQLite files in use already record their version in `schema_version`
(a library would need its own bookkeeping tables and an adoption step for them), and what we need
beyond "apply the missing steps in order" is two checks a library does not give directly: refuse a
schema newer than the code, and serialize concurrent migrators (a PostgreSQL advisory lock held
for the migration's transaction; DDL is transactional on both engines, so a failed step leaves the
previous version intact).

The steps themselves are in schema.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from drm.errors import SchemaNotMigrated, SchemaTooNew
from drm.storage.schema import MIGRATIONS, NOTIFY_CHANNEL, SCHEMA_VERSION, Migration

if TYPE_CHECKING:
    from drm.storage.database import Database, Transaction

__all__ = ["MIGRATIONS", "NOTIFY_CHANNEL", "SCHEMA_VERSION", "Migration", "MigrationResult", "check_schema", "migrate",
           "schema_version"]


_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_version (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )
"""


@dataclass(frozen=True, slots=True)
class MigrationResult:
    from_version: int   # 0: an empty database
    to_version: int

    @property
    def changed(self) -> bool:
        return self.from_version != self.to_version


def migrate(db: Database, *, to_version: int = SCHEMA_VERSION) -> MigrationResult:
    """Bring the schema up to ``to_version`` (default: this code's) in one transaction.

    Safe to run from several processes at once: the others wait for the first and then find
    nothing to do. Raises SchemaTooNew when the database is ahead of this code, ValueError for an
    unknown ``to_version``.
    """
    if not 1 <= to_version <= SCHEMA_VERSION:
        raise ValueError(f"to_version {to_version} is not a schema version (1..{SCHEMA_VERSION})")
    with db.transaction() as tx:
        tx.lock("drm.schema")
        tx.execute_script(_VERSION_TABLE)
        found = _version_within(tx)
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(found, SCHEMA_VERSION)
        for migration in MIGRATIONS[found:to_version]:
            tx.execute_script(db.dialect.render(migration.script))
            if db.dialect.name == "postgresql" and migration.postgresql:
                tx.execute_script(migration.postgresql)
            if migration.upgrade is not None:
                migration.upgrade(tx)
        target = max(found, to_version)
        tx.execute("INSERT INTO schema_version (id, version) VALUES (1, ?)"
                   " ON CONFLICT (id) DO UPDATE SET version = excluded.version", (target,))
    return MigrationResult(found, target)


def schema_version(db: Database) -> int:
    """The database's schema version; 0 for an empty database."""
    rows = db.query(_EXISTS[db.dialect.name])
    if not rows:
        return 0
    row = db.query_one("SELECT version FROM schema_version WHERE id = 1")
    return int(row[0]) if row else 0


def check_schema(db: Database) -> None:
    """Return quietly if the schema is this code's; raise SchemaNotMigrated or SchemaTooNew otherwise."""
    found = schema_version(db)
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(found, SCHEMA_VERSION)
    if found < SCHEMA_VERSION:
        raise SchemaNotMigrated(db.describe(), found, SCHEMA_VERSION)


_EXISTS = {
    "sqlite": "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
    "postgresql": "SELECT 1 FROM pg_catalog.pg_tables WHERE tablename = 'schema_version'"
                  " AND schemaname = ANY (current_schemas(false))",
}


def _version_within(tx: Transaction) -> int:
    row = tx.fetch_one("SELECT version FROM schema_version WHERE id = 1")
    return int(row[0]) if row else 0
